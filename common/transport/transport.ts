/**
 * The one interface both ends of a federation talk through: publish bytes to a topic, subscribe
 * to topic filters, close. Two implementations share it: memory.ts (one process, what simulate
 * runs on) and mqtt.ts (MQTT 3.1.1 through any broker; the only file that imports `mqtt`). Nothing
 * above this layer knows which one it has (Flower's grpc_grid / inmemory_grid split).
 *
 * Semantics every implementation keeps (test/integration/transport/ runs one suite on each):
 * - QoS 1 by default: a publish resolves once the broker (or the in-memory bus) took it; a
 *   message may arrive twice, so every handler above is idempotent.
 * - Inbound messages reach the one handler set with onMessage(), one at a time per transport,
 *   in arrival order; the next is not delivered (and, over MQTT, the PUBACK of this one is not
 *   sent) until the handler's promise settles, so a message is acknowledged only once handled.
 *   A handler that throws is logged by the transport and the message still counts as handled:
 *   a message that can never be processed must not be redelivered forever.
 * - Retained messages: the newest retained payload per topic is delivered on subscribe; an empty
 *   retained payload deletes it.
 * - A will (last-will message) is published by the broker when the client vanishes without close().
 * - Reconnects with backoff (ReconnectPolicy) and resubscribes on its own; 'connect' fires on
 *   every (re)connection, 'disconnect' on every loss.
 */
import type { Logger } from '../log.js';

export type QoS = 0 | 1;

export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  retained: boolean;
}

export type MessageHandler = (message: InboundMessage) => Promise<void> | void;

export interface PublishOptions {
  /** Default false. */
  retain?: boolean;
  /** Default 1. */
  qos?: QoS;
}

export interface WillMessage {
  topic: string;
  payload: Uint8Array;
  retain?: boolean;
  qos?: QoS;
}

export interface ReconnectPolicy {
  /** First delay after a loss; doubles on each failed attempt up to maxMs. */
  minMs: number;
  maxMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { minMs: 500, maxMs: 30_000 };

export interface TransportStatus {
  /** e.g. 'memory' or the broker URL without credentials. */
  endpoint: string;
  clientId: string;
  connected: boolean;
  /** ISO time of the last (re)connection, null before the first. */
  connectedAt: string | null;
  reconnects: number;
  lastError: string | null;
  /** Messages handed to onMessage's handler / published, since start. */
  received: number;
  sent: number;
  bytesReceived: number;
  bytesSent: number;
}

export type TransportEvent = 'connect' | 'disconnect';

export interface Transport {
  readonly clientId: string;
  publish(topic: string, payload: Uint8Array, opts?: PublishOptions): Promise<void>;
  /** Resolves once the subscription is active (retained messages may follow at once). */
  subscribe(filter: string, qos?: QoS): Promise<void>;
  unsubscribe(filter: string): Promise<void>;
  /** The one inbound handler; set it before subscribing. */
  onMessage(handler: MessageHandler): void;
  on(event: TransportEvent, listener: () => void): void;
  status(): TransportStatus;
  /**
   * Ends the connection cleanly (no will is published). `force` drops it at once without
   * waiting for in-flight publishes.
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

export interface TransportOptions {
  /** 1–64 of [A-Za-z0-9._-]: brokers and the topic rules rely on it. */
  clientId: string;
  will?: WillMessage;
  /**
   * false (a persistent session): the broker keeps the subscriptions and queues QoS 1 messages
   * while the client is away, and delivers them when it reconnects. Default true.
   */
  clean?: boolean;
  keepaliveS?: number;
  reconnect?: ReconnectPolicy;
  /** Time allowed for the first connection before connect fails (TRANSPORT_UNAVAILABLE). */
  connectTimeoutMs?: number;
  /** Handler failures and connection changes are logged here. */
  logger?: Logger;
}
