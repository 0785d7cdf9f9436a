import { readFileSync } from 'node:fs';
import pino from 'pino';
import { parseChunk, splitMessage } from '../../common/protocol/chunks.js';
import { decodeMessage, encodeMessage, MESSAGE_HEADER_BYTES } from '../../common/protocol/frame.js';
import { ackFor, updateFor, type Announce, type GlobalHeader, type Message } from '../../common/protocol/messages.js';
import { federationTopics, parseTopic, type FederationTopics } from '../../common/protocol/topics.js';
import { connectMqtt, type MqttTransport } from '../../common/transport/mqtt.js';

/**
 * One process of light simulated agents (forked by light-agents.ts; the round-scale benchmark).
 * Each agent is its own MQTT connection (the project's transport, common/transport/mqtt.ts) that
 * speaks the real protocol but does no work: it says it is online once, answers every FedAvg
 * announcement with its one pre-encrypted body (the coordinator refuses a repeated ciphertext
 * seed within a round, not across rounds) and acknowledges the round's global as soon as all its
 * chunks are in. To stay cheap next to the coordinator on a 2-core box it does not reassemble,
 * hash or decode the global's body: it reads the header of chunk 0 and counts the chunks.
 *
 * IPC (parent → worker): {cmd:'start', …WorkerStart}, {cmd:'stats'}, {cmd:'stop'};
 * (worker → parent): {ev:'ready', stats}, {ev:'stats', stats}, {ev:'stopped', stats}, {ev:'error', message}.
 */
export interface WorkerStart {
  url: string;
  federation: string;
  /** Agent ids this process runs. */
  ids: string[];
  /** A file of fixed-size bodies; agent i of this process uses the body at index bodyIndex0 + i. */
  bodiesFile: string;
  bodyBytes: number;
  bodyIndex0: number;
  samples: number;
  windows: number;
  chunkBytes?: number;
  /** Connections opened at once (default 25). */
  connectBatch?: number;
}

export interface WorkerStats {
  agents: number;
  connected: number;
  announces: number;
  updatesSent: number;
  acksSent: number;
  /** Announcements whose weightCap was below `samples` (no update sent). */
  capTooSmall: number;
  errors: number;
  firstErrors: string[];
  cpuUserS: number;
  cpuSystemS: number;
  rssMb: number;
}

interface LightAgent {
  id: string;
  body: Uint8Array;
  transport: MqttTransport | undefined;
  /** Round ids this agent sent an update for (and has not acknowledged yet). */
  answered: Set<number>;
  acked: Set<number>;
  /** The global being received: its hash, chunk count, chunks seen, header (from chunk 0). */
  global: { hash: string; count: number; seen: Set<number>; header: GlobalHeader | undefined } | undefined;
}

const log = pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { pid: process.pid, component: 'light-agent' } }, pino.destination({ dest: 2, sync: false }));

const stats: WorkerStats = { agents: 0, connected: 0, announces: 0, updatesSent: 0, acksSent: 0, capTooSmall: 0, errors: 0, firstErrors: [], cpuUserS: 0, cpuSystemS: 0, rssMb: 0 };
const agents: LightAgent[] = [];
let cfg: WorkerStart;
let topics: FederationTopics;

function snapshot(): WorkerStats {
  const u = process.cpuUsage();
  return { ...stats, firstErrors: [...stats.firstErrors], cpuUserS: u.user / 1e6, cpuSystemS: u.system / 1e6, rssMb: process.memoryUsage().rss / 2 ** 20 };
}

function send(msg: object): void {
  process.send?.(msg);
}

function fail(what: string, err: unknown): void {
  stats.errors++;
  if (stats.firstErrors.length < 5) stats.firstErrors.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
}

/** Encodes, chunks and publishes one message (QoS 1) without blocking the caller. */
function publish(a: LightAgent, topic: string, message: Message, onSent?: () => void): void {
  const t = a.transport;
  if (!t) return;
  let chunks: Uint8Array[];
  try {
    chunks = splitMessage(encodeMessage(message), cfg.chunkBytes);
  } catch (err) {
    fail(`${a.id} encode ${message.type}`, err);
    return;
  }
  void (async () => {
    for (const c of chunks) await t.publish(topic, c, { qos: 1 });
  })().then(
    () => onSent?.(),
    (err) => fail(`${a.id} publish ${message.type}`, err),
  );
}

function onAnnounce(a: LightAgent, m: Announce): void {
  stats.announces++;
  if (m.phase !== 'fedavg' || a.answered.has(m.round) || a.acked.has(m.round)) return;
  if (cfg.samples > m.weightCap) {
    stats.capTooSmall++;
    return;
  }
  a.answered.add(m.round);
  // A sharded round (announce.shards): the update names its shard and goes to that shard's topic.
  const u = updateFor(m, a.id, { samples: cfg.samples, windows: cfg.windows, body: a.body });
  publish(a, u.shard === undefined ? topics.update(a.id) : topics.shardUpdate(u.shard, a.id), u, () => stats.updatesSent++);
}

function onGlobalChunk(a: LightAgent, payload: Uint8Array): void {
  const c = parseChunk(payload);
  if (a.global?.hash !== c.hash) a.global = { hash: c.hash, count: c.count, seen: new Set(), header: undefined };
  const g = a.global;
  g.seen.add(c.index);
  if (c.index === 0) {
    // The message frame (frame.ts) starts chunk 0: 16 bytes, then the header JSON of length H.
    const v = new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength);
    const h = v.getUint32(8, true);
    const json = JSON.parse(Buffer.from(c.data.buffer, c.data.byteOffset + MESSAGE_HEADER_BYTES, h).toString('utf8')) as Omit<GlobalHeader, 'type'>;
    g.header = { type: 'global', ...json };
  }
  if (g.seen.size < g.count || !g.header) return;
  const header = g.header;
  a.global = undefined;
  if (!a.answered.has(header.round) || a.acked.has(header.round)) return;
  a.answered.delete(header.round);
  a.acked.add(header.round);
  publish(a, topics.ack(a.id), ackFor(header, a.id, { ok: true, loss: 1 }), () => stats.acksSent++);
}

async function connect(a: LightAgent): Promise<void> {
  const t = await connectMqtt(cfg.url, { clientId: a.id, logger: log, keepaliveS: 300, connectTimeoutMs: 60_000, reconnect: { minMs: 500, maxMs: 5000 } });
  a.transport = t;
  t.onMessage((m) => {
    if (m.payload.length === 0) return; // a deleted retained chunk
    try {
      const kind = parseTopic(m.topic)?.kind;
      if (kind === 'round') {
        const c = parseChunk(m.payload);
        if (c.count !== 1) throw new Error(`an announcement in ${c.count} chunks`);
        const msg = decodeMessage(c.data, new Set(['announce']));
        if (msg.type === 'announce') onAnnounce(a, msg);
      } else if (kind === 'global') onGlobalChunk(a, m.payload);
    } catch (err) {
      fail(`${a.id} inbound ${m.topic}`, err);
    }
  });
  await t.subscribe(topics.round);
  await t.subscribe(topics.globalFilter);
  stats.connected++;
  publish(a, topics.presence(a.id), { type: 'presence', federation: cfg.federation, agent: a.id, state: 'online', at: Date.now() });
}

async function start(c: WorkerStart): Promise<void> {
  cfg = c;
  topics = federationTopics(c.federation);
  const all = readFileSync(c.bodiesFile);
  c.ids.forEach((id, i) => {
    const from = (c.bodyIndex0 + i) * c.bodyBytes;
    if (from + c.bodyBytes > all.length) throw new RangeError(`${c.bodiesFile} holds no body ${c.bodyIndex0 + i}`);
    agents.push({ id, body: new Uint8Array(all.subarray(from, from + c.bodyBytes)), transport: undefined, answered: new Set(), acked: new Set(), global: undefined });
  });
  stats.agents = agents.length;
  const batch = c.connectBatch ?? 25;
  for (let i = 0; i < agents.length; i += batch) await Promise.all(agents.slice(i, i + batch).map(connect));
}

async function stop(): Promise<void> {
  await Promise.all(agents.map((a) => a.transport?.close({ force: true }).catch(() => undefined)));
}

process.on('message', (raw: { cmd: string } & Partial<WorkerStart>) => {
  if (raw.cmd === 'start') {
    start(raw as unknown as WorkerStart).then(
      () => send({ ev: 'ready', stats: snapshot() }),
      (err: Error) => send({ ev: 'error', message: err.stack ?? err.message }),
    );
  } else if (raw.cmd === 'stats') send({ ev: 'stats', stats: snapshot() });
  else if (raw.cmd === 'stop') {
    void stop().finally(() => {
      send({ ev: 'stopped', stats: snapshot() });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 200).unref();
    });
  }
});
// The parent went away: nothing left to do.
process.on('disconnect', () => setTimeout(() => process.exit(0), 500).unref());
