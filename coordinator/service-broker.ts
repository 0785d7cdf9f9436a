import { isInsecureRemote } from '../common/config/broker-security.js';
import type { Logger } from '../common/log.js';
import { connectMqtt, type MqttTransport } from '../common/transport/mqtt.js';
import { loadBrokerCredentials, loadServerMaterial, type BrokerCredentials, type KeyLabel, type TlsServerMaterial } from '../common/transport/tls-credentials.js';
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

/**
 * The `[broker]` TLS files, read and checked (TLS_MATERIAL_INVALID, exit 78, naming key and file):
 * the client credentials for an external broker, the server material for the embedded one.
 */
export type BrokerSecurity = { kind: 'client'; credentials: BrokerCredentials } | { kind: 'server'; material: TlsServerMaterial | undefined; warnings: string[] };

export function loadBrokerSecurity(config: CoordinatorConfig): BrokerSecurity {
  const b = config.broker;
  const label: KeyLabel = (k) => `broker.${k} (${config.origins.get(`broker.${k}`) ?? config.source ?? 'defaults'})`;
  if (b.url !== 'embedded') return { kind: 'client', credentials: loadBrokerCredentials(b, label) };
  if (b.cert === '') return { kind: 'server', material: undefined, warnings: [] };
  const { material, warnings } = loadServerMaterial(b, label);
  return { kind: 'server', material, warnings };
}

export async function openBroker(config: CoordinatorConfig, logger: (component: string) => Logger, federation?: string): Promise<BrokerLink> {
  const b = config.broker;
  const log = logger('transport');
  const security = loadBrokerSecurity(config);
  for (const warning of security.kind === 'client' ? security.credentials.warnings : security.warnings) log.warn({ warning }, 'broker credentials readable by others');
  const transportOptions = { clientId: b.client_id, clean: false, connectTimeoutMs: FIRST_CONNECT_TIMEOUT_MS, logger: log };
  if (security.kind === 'client') {
    if (b.allow_insecure && isInsecureRemote(b.url)) log.warn({ broker: b.url }, 'broker.allow_insecure: the broker connection is unencrypted and unauthenticated; anyone on the path can read and forge federation messages');
    const c = security.credentials;
    const transport = await connectMqtt(b.url, {
      ...transportOptions,
      ...(c.tls === undefined ? {} : { tls: c.tls }),
      ...(c.username === undefined ? {} : { username: c.username }),
      ...(c.password === undefined ? {} : { password: c.password }),
    });
    return { url: transport.status().endpoint, embedded: null, transport };
  }
  const embedded = await startEmbeddedBroker({
    host: b.embedded_host,
    port: b.embedded_port,
    logger: logger('broker'),
    ...(security.material === undefined ? {} : { tls: security.material, coordinatorIdentity: b.client_id }),
    ...(federation === undefined ? {} : { federation }),
  });
  try {
    const transport = await connectMqtt(embedded.url, { ...transportOptions, stream: () => embedded.trustedStream() });
    return { url: embedded.url, embedded, transport };
  } catch (err) {
    await embedded.close();
    throw err;
  }
}
