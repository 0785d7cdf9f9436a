import { UpdateAccumulator } from '../../common/crypto/aggregate.js';
import { AgentCipher, deriveParams, generateFederation } from '../../common/crypto/index.js';
import { DEFAULT_FEDERATION_MODEL, modelParamCount } from '../../common/protocol/federation-model.js';

/**
 * aggregate-scale: what an aggregate of K updates weighs and what decrypting it costs an agent,
 * seeded (kind 2: every agent's c1 seed carried, the form before D18) against expanded (kind 3:
 * the adder expands the seeds into one summed c1), for the default model (one ciphertext) or
 * BENCH_PARAMS parameters.
 *
 *   BENCH_AGENTS=10,100,1000,10000 npm run bench -- aggregate-scale
 *
 * One JSON line per K: bytes of an update and of both aggregates, the adder's time for each, and
 * the agent's decrypt time of each (best of 3, wall clock; one core).
 */
const AGENTS = (process.env.BENCH_AGENTS ?? '10,100,1000,10000').split(',').map((s) => Number(s.trim()));
const PARAMS = Number(process.env.BENCH_PARAMS ?? modelParamCount(DEFAULT_FEDERATION_MODEL));
for (const k of AGENTS) if (!Number.isInteger(k) || k < 1 || k > 65_536) throw new RangeError(`BENCH_AGENTS: each K must be an integer 1 … 65536, got ${process.env.BENCH_AGENTS}`);
if (!Number.isInteger(PARAMS) || PARAMS < 1 || PARAMS > 1_000_000) throw new RangeError(`BENCH_PARAMS must be an integer 1 … 1000000, got ${process.env.BENCH_PARAMS}`);

const log = (msg: string) => process.stderr.write(`[aggregate-scale] ${msg}\n`);

function bestMs(repeats: number, fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

const { agent, coordinator } = await generateFederation({ federationId: 'bench' });
const d = deriveParams(coordinator.params);
const cipher = await AgentCipher.create(agent);
try {
  const maxK = Math.max(...AGENTS);
  const t0 = performance.now();
  const weights = Float32Array.from({ length: PARAMS }, (_, i) => Math.sin(i) / 4);
  const updates = Array.from({ length: maxK }, () => cipher.encryptUpdate(weights, 1));
  log(`${maxK} updates of ${PARAMS} params encrypted in ${((performance.now() - t0) / 1000).toFixed(1)} s (${updates[0]!.length} bytes each)`);
  for (const k of AGENTS) {
    const sum = (expandAbove: number) => {
      const acc = new UpdateAccumulator(coordinator, { paramCount: PARAMS, expandAbove });
      for (let i = 0; i < k; i++) acc.add(updates[i]!);
      return acc.finish();
    };
    let seeded!: Uint8Array;
    let expanded!: Uint8Array;
    const addSeededMs = bestMs(1, () => (seeded = sum(Number.MAX_SAFE_INTEGER)));
    const addExpandedMs = bestMs(1, () => (expanded = sum(0)));
    const decryptSeededMs = bestMs(k > 2000 ? 1 : 3, () => cipher.decryptAggregate(seeded, { paramCount: PARAMS }));
    const decryptExpandedMs = bestMs(3, () => cipher.decryptAggregate(expanded, { paramCount: PARAMS }));
    // The same ciphertext either way: the two decryptions must agree exactly.
    const a = cipher.decryptAggregate(seeded, { paramCount: PARAMS }).weights;
    const b = cipher.decryptAggregate(expanded, { paramCount: PARAMS }).weights;
    const same = a.every((x, i) => x === b[i]);
    log(`K=${k}: seeded ${seeded.length} B (add ${addSeededMs.toFixed(0)} ms, decrypt ${decryptSeededMs.toFixed(1)} ms), expanded ${expanded.length} B (add ${addExpandedMs.toFixed(0)} ms, decrypt ${decryptExpandedMs.toFixed(1)} ms), decryptions equal: ${same}`);
    process.stdout.write(
      JSON.stringify({
        bench: 'aggregate-scale',
        agents: k,
        params: PARAMS,
        ciphertexts: Math.ceil(PARAMS / d.slots),
        update_bytes: updates[0]!.length,
        seeded_bytes: seeded.length,
        expanded_bytes: expanded.length,
        expanded_vs_update: Math.round((expanded.length / updates[0]!.length) * 1000) / 1000,
        add_seeded_ms: Math.round(addSeededMs),
        add_expanded_ms: Math.round(addExpandedMs),
        decrypt_seeded_ms: Math.round(decryptSeededMs * 10) / 10,
        decrypt_expanded_ms: Math.round(decryptExpandedMs * 10) / 10,
        decryptions_equal: same,
      }) + '\n',
    );
  }
} finally {
  cipher.dispose();
}
