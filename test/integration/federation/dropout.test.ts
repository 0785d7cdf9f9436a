// Federated dropout in a real (in-process) federation session: coordinator round runner, three
// agent participants on real GCD traces, CKKS over the in-memory bus, [model] dropout_rate 0.5.
// A third party holding the agent key decrypts every update and global (as in rounds.test.ts)
// and checks: each agent zeroed exactly the units the mask rule drops for it; each global names
// per unit the Σ n_k of the agents that kept it; the per-parameter average the agents compute
// from it (rescaled, base where no one kept a unit) is the average over the agents that had each
// parameter; and every agent's federated model starts from that average of the best round.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chronologicalSplit, buildWindows, sliceWindows } from '../../../agent/trainer/windows.js';
import { AgentCipher, generateFederation } from '../../../common/crypto/index.js';
import { dropoutLayout, dropoutSeed, dropUnits, keptUnits, rescaleAverage, unitWeights } from '../../../common/protocol/dropout.js';
import { modelParamCount, parseFederationModel } from '../../../common/protocol/federation-model.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { markGaps, readClientCsv } from '../../../simulate/csv.js';
import { runInProcessFederation } from '../../../simulate/federation.js';
import { METRICS, TRACES } from '../../helpers/federation-cluster.js';
import { FederationObserver } from '../../helpers/federation-observer.js';
import { exitAfter, within } from '../../helpers/wait.js';

exitAfter(150_000, 'federation/dropout.test');

const MODEL = parseFederationModel({ metrics: METRICS, rounds: 3, hiddenUnits: 8, dropoutRate: 0.5 });
const LAYOUT = dropoutLayout(MODEL)!;
const P = modelParamCount(MODEL);
const HISTORY = [0.8, 0.7, 0.6];
const logger = pino({ level: 'silent' });
/** CKKS error of a decrypted average, after the rescale (≤ 3× for a unit one of the three agents kept). */
const TOLERANCE = 1e-3;

test('a session with federated dropout: masks, per-unit weights and per-parameter averages agree on both ends', async () => {
  const keys = await generateFederation({ federationId: 'dropout' });
  const cipher = await AgentCipher.create(keys.agent);
  const bus = new MemoryBus();
  const observer = await FederationObserver.attach(await bus.connect({ clientId: 'observer', logger }), 'dropout', logger);
  try {
    const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort();
    const agents = HISTORY.map((h, k) => {
      const { series } = markGaps(readClientCsv(join(TRACES, traces[k]!), METRICS), MODEL.lookback + MODEL.horizon);
      const C = METRICS.length;
      const all = buildWindows(series.values.subarray(0, Math.floor((series.values.length / C) * h) * C), C, MODEL.lookback, MODEL.horizon);
      const { train, validation } = chronologicalSplit(sliceWindows(all, all.n - MODEL.maxWindows, all.n), MODEL.validationFraction);
      return { id: `agent-${k}`, data: { sessionWindows: () => ({ train, validation }) }, seedOffset: 1000 * k };
    });
    const result = await within(runInProcessFederation({ model: MODEL, agents, keys, bus, logger }), 120_000, 'the session');
    const fedavg = result.history.filter((r) => r.phase === 'fedavg');
    assert.is(fedavg.length, 3);
    assert.ok(result.history.every((r) => r.outcome === 'completed'));

    let base = result.engines.initial;
    const averaged = new Map<number, Float32Array>();
    for (const r of fedavg) {
      const spec = { rate: 0.5, seed: dropoutSeed('dropout', r.round) };
      const updates = observer.roundUpdates(r.round);
      assert.is(updates.size, 3);
      const expected = new Float64Array(P);
      const weightOf = new Float64Array(P);
      for (const [agent, u] of updates) {
        const kept = keptUnits(spec, agent, LAYOUT.units);
        const w = cipher.decryptAggregate(u.body, { paramCount: P }).weights;
        const ones = dropUnits(new Float32Array(P).fill(1), LAYOUT, kept);
        for (let i = 0; i < P; i++) {
          if (ones[i] === 0) assert.ok(Math.abs(w[i]!) < 1e-4, `${agent} round ${r.round}: parameter ${i} of a dropped unit is ${w[i]}`);
          else {
            expected[i]! += u.header.samples * w[i]!;
            weightOf[i]! += u.header.samples;
          }
        }
      }
      const g = observer.roundGlobal(r.round);
      assert.equal(g.unitWeights, unitWeights(spec, [...updates].map(([agent, u]) => ({ agent, samples: u.header.samples })), LAYOUT.units), `round ${r.round}: the global's per-unit weights`);
      const avg = rescaleAverage(cipher.decryptAggregate(g.body, { paramCount: P }).weights, g.totalSamples, g.unitWeights!, base, LAYOUT);
      for (let i = 0; i < P; i++) {
        const want = weightOf[i]! > 0 ? expected[i]! / weightOf[i]! : base[i]!;
        assert.ok(Math.abs(avg[i]! - want) < TOLERANCE, `round ${r.round} parameter ${i}: ${avg[i]} vs ${want}`);
      }
      averaged.set(r.round, avg);
      base = avg;
    }
    // The final round hands every agent the best round's average; each agent's fedavg piece is it.
    const final = result.history.find((r) => r.phase === 'final')!;
    const fg = observer.roundGlobal(final.round);
    const best = fg.selection!.bestRound;
    for (const [id, fm] of result.models) {
      assert.is(fm.bestRound, best);
      const want = best === 0 ? result.engines.initial : averaged.get(best)!;
      let diff = 0;
      for (let i = 0; i < P; i++) diff = Math.max(diff, Math.abs(fm.fedavg.weights[i]! - want[i]!));
      assert.ok(diff < TOLERANCE, `${id}: its federated model is ${diff} from the best round's per-parameter average`);
    }
    if (best > 0) assert.equal(fg.unitWeights, observer.roundGlobal(best).unitWeights);
    assert.is(result.models.size, 3);
  } finally {
    cipher.dispose();
    await observer.close();
  }
});

test.run();
