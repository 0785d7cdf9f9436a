import { AgentCipher, deriveParams, generateFederation, securityBits } from '../../common/crypto/index.js';
import { ckksFedAvg } from '../../coordinator/strategy/ckks-fedavg.js';
import { fedAvg, type ClientUpdate } from '../../coordinator/strategy/fedavg.js';

// npm run bench -- ckks [PARAMS] [AGENTS]: encrypts, aggregates and decrypts a 100,000-parameter
// model for 100 agents on one core; plaintext FedAvg of the same updates, in the same process, is
// the baseline. Progress on stderr, one JSON line on stdout. Everything is single-threaded, so rates
// use this process's CPU time (user + system): on a shared 2-core box wall time mostly measures the
// neighbours; wall-clock rates are printed on stderr for comparison.
const PARAMS = Number(process.argv[2] ?? 100_000);
const AGENTS = Number(process.argv[3] ?? 100);
const REPEATS = 3;

function log(msg: string): void {
  process.stderr.write(`[ckks] ${msg}\n`);
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Best of `repeats` runs: CPU seconds `s` and wall seconds `wall` (the least disturbed run). */
function best<T>(repeats: number, fn: () => T): { s: number; wall: number; value: T } {
  let s = Infinity;
  let wall = Infinity;
  let value!: T;
  for (let r = 0; r < repeats; r++) {
    const c = cpuSeconds();
    const t = process.hrtime.bigint();
    value = fn();
    wall = Math.min(wall, Number(process.hrtime.bigint() - t) / 1e9);
    s = Math.min(s, cpuSeconds() - c);
  }
  return { s, wall, value };
}

const { agent, coordinator } = await generateFederation({ federationId: 'bench' });
const d = deriveParams(coordinator.params);
const cipher = await AgentCipher.create(agent);
const clients: ClientUpdate[] = Array.from({ length: AGENTS }, () => ({
  weights: new Float32Array(PARAMS).map(() => (Math.random() * 2 - 1) * 10),
  samples: 100 + Math.floor(Math.random() * 2000),
}));

cipher.encryptUpdate(clients[0]!.weights, clients[0]!.samples); // warm-up (JIT, SEAL memory pool)
log(`encrypting ${AGENTS} updates of ${PARAMS} params`);
const enc = best(1, () => clients.map((c) => cipher.encryptUpdate(c.weights, c.samples)));
const updates = enc.value;
const encryptS = enc.s;

log('aggregating');
ckksFedAvg(coordinator, updates.slice(0, 10)); // warm-up
const agg = best(REPEATS, () => ckksFedAvg(coordinator, updates, { paramCount: PARAMS }));
log('plaintext FedAvg baseline');
fedAvg(clients.slice(0, 10));
const plain = best(REPEATS, () => fedAvg(clients));

log(`decrypting the aggregate (${AGENTS} seeds per ciphertext)`);
const dec = best(1, () => cipher.decryptAggregate(agg.value, { paramCount: PARAMS }));
const single = best(REPEATS, () => cipher.decryptAggregate(updates[0]!, { paramCount: PARAMS }));
let maxErr = 0;
for (let i = 0; i < PARAMS; i++) maxErr = Math.max(maxErr, Math.abs(dec.value.weights[i]! - plain.value[i]!));
cipher.dispose();

const aggregateRate = (PARAMS * AGENTS) / agg.s;
const plainRate = (PARAMS * AGENTS) / plain.s;
const wallRate = (work: number, r: { wall: number }): string => `${(work / r.wall / 1e6).toFixed(2)} M/s`;
log(`wall clock: encrypt ${wallRate(PARAMS * AGENTS, enc)}, aggregate ${wallRate(PARAMS * AGENTS, agg)}, plaintext ${wallRate(PARAMS * AGENTS, plain)}, decrypt ${wallRate(PARAMS, dec)}`);
log(`aggregate ${(aggregateRate / 1e6).toFixed(1)} M param·clients/s vs plaintext ${(plainRate / 1e6).toFixed(1)} M (ratio ${(aggregateRate / plainRate).toFixed(2)})`);
process.stdout.write(
  JSON.stringify({
    bench: 'ckks',
    bytes_per_param: updates[0]!.length / PARAMS,
    encrypt_params_per_s: Math.round((PARAMS * AGENTS) / encryptS),
    decrypt_params_per_s: Math.round(PARAMS / dec.s),
    aggregate_param_clients_per_s: Math.round(aggregateRate),
    max_abs_err: maxErr,
    security_bits: securityBits(d.n, d.qBits),
    plaintext_fedavg_param_clients_per_s: Math.round(plainRate),
    params: PARAMS,
    agents: AGENTS,
    aggregate_bytes_per_param: agg.value.length / PARAMS,
    decrypt_single_update_params_per_s: Math.round(PARAMS / single.s),
    aggregate_vs_plaintext: aggregateRate / plainRate,
    timing: 'process CPU time, best of 3 (encrypt and aggregate decrypt: 1 run)',
  }) + '\n',
);
