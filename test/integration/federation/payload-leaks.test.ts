// What leaves the machines, recorded by a privileged subscriber on the broker (Mosquitto, `#`)
// during one encrypted, signed session of 3 agent daemons (ridge round, 3 FedAvg rounds, final):
// no agent's raw metric sequence and no plaintext weight vector appears in any payload, and no
// file of the coordinator's state directory and no line of its log holds secret-key material.
// Each detector is first shown to find what it looks for (a test that cannot fail proves nothing).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher } from '../../../common/crypto/index.js';
import { modelParamCount, parseFederationModel } from '../../../common/protocol/federation-model.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import { readClientCsv } from '../../../simulate/csv.js';
import { FederationCluster, METRICS, TRACES } from '../../helpers/federation-cluster.js';
import { FederationObserver } from '../../helpers/federation-observer.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { exitAfter } from '../../helpers/wait.js';

exitAfter(240_000, 'federation/payload-leaks.test');

const AGENTS = 3;
const ROUNDS = 3;
const logger = pino({ level: 'silent' });
let mosquitto: MosquittoBroker | undefined;
let cluster: FederationCluster | undefined;
let recorder: MqttTransport | undefined;
let observer: FederationObserver | undefined;
const payloads: { topic: string; bytes: Buffer }[] = [];

test.before(async () => {
  mosquitto = await startMosquitto();
  cluster = await FederationCluster.create({ agents: AGENTS, broker: mosquitto.url, rounds: ROUNDS, intervalMs: 100, coordinatorLogLevel: 'debug' });
  await cluster.startCoordinator();
  // Mosquitto's default: any client may subscribe to everything, as a broker operator can.
  recorder = await connectMqtt(mosquitto.url, { clientId: 'recorder', logger });
  recorder.onMessage((m) => void payloads.push({ topic: m.topic, bytes: Buffer.from(m.payload) }));
  await recorder.subscribe('#');
  observer = await FederationObserver.attach(await connectMqtt(mosquitto.url, { clientId: 'observer', logger }), cluster.federation, logger);
  await cluster.runFirstSession(150_000);
});

test.after(async () => {
  await observer?.close();
  await recorder?.close({ force: true }).catch(() => undefined);
  await cluster?.close();
  await mosquitto?.cleanup();
});

/** Every byte pattern in `needles` that occurs in one of the haystacks, with where. */
function found(needles: { what: string; bytes: Buffer }[], haystacks: { name: string; bytes: Buffer }[]): string[] {
  const hits: string[] = [];
  for (const n of needles) for (const h of haystacks) if (h.bytes.indexOf(n.bytes) >= 0) hits.push(`${n.what} in ${h.name}`);
  return hits;
}

/** Runs of 4 consecutive samples of each metric of each agent's trace, as float32, float64 and CSV text. */
function metricNeedles(): { what: string; bytes: Buffer }[] {
  const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort().slice(0, AGENTS);
  const out: { what: string; bytes: Buffer }[] = [];
  for (const t of traces) {
    const s = readClientCsv(join(TRACES, t), METRICS);
    const n = s.values.length / METRICS.length;
    METRICS.forEach((m, c) => {
      for (let start = 0; start + 4 <= n; start += 23) {
        const run = Array.from({ length: 4 }, (_, k) => s.values[(start + k) * METRICS.length + c]!);
        if (new Set(run).size < 2) continue; // a flat run (all zero) would match any zero padding
        out.push({ what: `${t} ${m}[${start}…] float32`, bytes: Buffer.from(Float32Array.from(run).buffer) });
        out.push({ what: `${t} ${m}[${start}…] float64`, bytes: Buffer.from(Float64Array.from(run).buffer) });
      }
    });
  }
  return out;
}

test('no raw metric sequence of any agent is in any payload on the broker', () => {
  const needles = metricNeedles();
  assert.ok(needles.length > 50, `${needles.length} patterns`);
  // The detector finds them where they are: in the traces' own values.
  const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort().slice(0, AGENTS);
  const own = traces.flatMap((t) => {
    const v = readClientCsv(join(TRACES, t), METRICS).values;
    return METRICS.map((m, c) => ({ name: `${t} ${m}`, bytes: Buffer.from(v.filter((_, i) => i % METRICS.length === c).buffer) }));
  });
  assert.ok(found(needles.filter((x) => x.what.endsWith('float32')), [{ name: 'all', bytes: Buffer.concat(own.map((o) => o.bytes)) }]).length > 0, 'the detector finds a float32 run in the traces themselves');
  const topics = new Set(payloads.map((p) => p.topic.split('/')[3]));
  for (const kind of ['round', 'global', 'update', 'ack', 'presence']) assert.ok(topics.has(kind), `recorded ${kind} payloads (${[...topics].join(', ')})`);
  const hits = found(needles, payloads.map((p, i) => ({ name: `payload ${i} on ${p.topic}`, bytes: p.bytes })));
  assert.equal(hits, []);
});

/** True when `floats` holds a run of 8 values within 1e-6 of weights[at … at+7] for some at. */
function containsRun(floats: Float32Array | Float64Array, weights: Float32Array): boolean {
  const tol = 1e-6;
  for (let at = 0; at + 8 <= weights.length; at += 97) {
    const w0 = weights[at]!;
    if (Math.abs(w0) < 1e-4) continue; // near-zero values match padding
    for (let j = 0; j + 8 <= floats.length; j++) {
      if (Math.abs(floats[j]! - w0) > tol) continue;
      let k = 1;
      while (k < 8 && Math.abs(floats[j + k]! - weights[at + k]!) <= tol) k++;
      if (k === 8) return true;
    }
  }
  return false;
}

function asFloats(b: Buffer): (Float32Array | Float64Array)[] {
  const out: (Float32Array | Float64Array)[] = [];
  for (let off = 0; off < 8; off++) {
    const copy = new Uint8Array(b.subarray(off));
    if (off < 4) out.push(new Float32Array(copy.buffer, 0, Math.floor(copy.length / 4)));
    out.push(new Float64Array(copy.buffer, 0, Math.floor(copy.length / 8)));
  }
  return out;
}

test('no plaintext weight vector (an agent update, decrypted here with the agent key) is in any payload', async () => {
  const cipher = await AgentCipher.create(cluster!.agentBundle);
  try {
    const model = parseFederationModel({ metrics: METRICS, rounds: ROUNDS });
    const params = modelParamCount(model);
    const vectors: { what: string; w: Float32Array }[] = [];
    for (const [round, byAgent] of observer!.updates) {
      for (const [agent, list] of byAgent) {
        const u = list[0]!;
        if (u.header.phase !== 'fedavg') continue;
        vectors.push({ what: `${agent} round ${round}`, w: cipher.decryptAggregate(u.body, { paramCount: params }).weights });
      }
    }
    assert.ok(vectors.length >= AGENTS * ROUNDS, `${vectors.length} decrypted FedAvg updates`);
    // The detector finds a weight vector sent in the clear (as the plaintext codec would send it).
    const clear = Buffer.concat([Buffer.alloc(3), Buffer.from(vectors[0]!.w.buffer)]);
    assert.ok(asFloats(clear).some((f) => containsRun(f, vectors[0]!.w)), 'the detector finds a plaintext vector');
    const hits: string[] = [];
    for (const [i, p] of payloads.entries()) {
      const views = asFloats(p.bytes);
      for (const v of vectors) if (views.some((f) => containsRun(f, v.w))) hits.push(`${v.what} in payload ${i} on ${p.topic}`);
    }
    assert.equal(hits, []);
  } finally {
    cipher.dispose();
  }
});

test("no file of the coordinator's state directory and no line of its log holds secret-key material", () => {
  const key = Buffer.from(cluster!.agentBundle.secretKey);
  const needles = [{ what: 'the secret key in base64', bytes: Buffer.from(key.toString('base64').slice(0, 64)) }];
  for (let at = 0; at + 32 <= key.length; at += Math.max(32, Math.floor(key.length / 16))) {
    needles.push({ what: `secret key bytes ${at}…${at + 31}`, bytes: key.subarray(at, at + 32) });
    needles.push({ what: `secret key bytes ${at}…${at + 31} as hex`, bytes: Buffer.from(key.subarray(at, at + 32).toString('hex')) });
    needles.push({ what: `secret key bytes ${at}…${at + 31} as base64`, bytes: Buffer.from(key.subarray(at, at + 30).toString('base64')) });
  }
  // The detector finds the key where it is: the agents' bundle.
  const bundle = readFileSync(join(cluster!.dir, 'keys', 'agent.json'));
  assert.ok(found(needles, [{ name: 'agent.json', bytes: bundle }]).length > 0, 'the detector finds the key in agent.json');
  const files: { name: string; bytes: Buffer }[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) files.push({ name: path, bytes: readFileSync(path) });
    }
  };
  walk(cluster!.coordinatorStateDir);
  assert.ok(files.length > 0, 'the coordinator wrote state');
  const log = cluster!.current('coordinator').logs.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(log.length > 1000, 'the coordinator logged (debug)');
  files.push({ name: 'the coordinator log', bytes: Buffer.from(log) });
  assert.equal(found(needles, files), []);
});

test.run();
