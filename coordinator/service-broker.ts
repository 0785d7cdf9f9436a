import type { Logger } from '../common/log.js';
import { connectMqtt, type MqttTransport } from '../common/transport/mqtt.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded-broker.js';
import type { CoordinatorConfig } from './config/schema.js';

/**
 * The coordinator's broker connection: the embedded aedes broker started in this process (the
 * coordinator then connects over an in-process trusted stream, the only client allowed to
 * publish retained messages), or an external broker by URL. Either way the session is
 * persistent (clean: false), so QoS 1 updates published while the coordinator restarts are
 * queued by an external broker and delivered when it is back.
 */
export interface BrokerLink {
  /** What agents connect to: the embedded broker's mqtt://127.0.0.1:PORT, or the configured URL. */
  url: string;
  embedded: EmbeddedBroker | null;
  transport: MqttTransport;
}

/** The first connection must come within this, else TRANSPORT_UNAVAILABLE (exit 69). */
export const FIRST_CONNECT_TIMEOUT_MS = 10_000;

export async function openBroker(config: CoordinatorConfig, logger: (component: string) => Logger): Promise<BrokerLink> {
  const b = config.broker;
  const transportOptions = { clientId: b.client_id, clean: false, connectTimeoutMs: FIRST_CONNECT_TIMEOUT_MS, logger: logger('transport') };
  if (b.url !== 'embedded') {
    const transport = await connectMqtt(b.url, transportOptions);
    return { url: transport.status().endpoint, embedded: null, transport };
  }
  const embedded = await startEmbeddedBroker({ host: b.embedded_host, port: b.embedded_port, logger: logger('broker') });
  try {
    const transport = await connectMqtt(embedded.url, { ...transportOptions, stream: () => embedded.trustedStream() });
    return { url: embedded.url, embedded, transport };
  } catch (err) {
    await embedded.close();
    throw err;
  }
}
