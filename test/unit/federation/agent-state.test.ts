import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { parseFederationModel, modelConfigHash } from '../../../common/protocol/federation-model.js';
import { ForecastScore } from '../../../agent/federation/forecast-score.js';
import { FEDERATED_MODEL_FILE, loadFederatedModel, moveAside, OTHER_LAYOUT_SUFFIX, saveFederatedModel } from '../../../agent/federation/model-file.js';
import type { FederatedModel } from '../../../agent/federation/federated-model.js';
import { RingFederationData } from '../../../agent/federation/ring-data.js';
import { agentIdOf, agentSeedOffset } from '../../../agent/federation/job.js';
import { tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-fed-state-');
test.after(() => tmp.cleanup());

const model = parseFederationModel({ metrics: ['cpu_busy_pct', 'mem_used_pct'], lookback: 4, horizon: 2, hiddenUnits: 3 });
function sample(): FederatedModel {
  const w = (k: number) => Float32Array.from({ length: 40 }, (_, i) => i * 0.01 + k);
  return {
    session: 3, round: 17, bestRound: 12, model, configHash: modelConfigHash(model), scaler: { mean: [50, 40], std: [10, 2] },
    fedavg: { weights: w(0), calibration: { blend: [1, 0.5], changeLimit: [3, 4] } },
    fineTuned: { weights: w(1), calibration: undefined },
    local: { weights: w(2), calibration: { blend: [0, 1], changeLimit: [1, 1] } },
    ridge: { betas: [Float64Array.from({ length: 7 }, (_, i) => i / 3), Float64Array.from({ length: 7 }, (_, i) => -i)], calibrations: [undefined, { blend: [1, 1], changeLimit: [2, 2] }], lambdas: [0.01, 1] },
    createdAt: '2026-12-02T00:00:00.000Z',
  };
}

test('the federated model file round-trips every piece, calibration and ridge head', () => {
  const dir = join(tmp.dir, 'ok');
  mkdirSync(dir, { recursive: true });
  saveFederatedModel(dir, sample());
  const back = loadFederatedModel(dir)!;
  const want = sample();
  assert.equal({ ...back, fedavg: 0, fineTuned: 0, local: 0, ridge: 0 }, { ...want, fedavg: 0, fineTuned: 0, local: 0, ridge: 0 });
  for (const k of ['fedavg', 'fineTuned', 'local'] as const) {
    assert.equal(Array.from(back[k].weights), Array.from(want[k].weights), k);
    assert.equal(back[k].calibration, want[k].calibration, `${k} calibration`);
  }
  assert.equal(back.ridge!.betas.map((b) => Array.from(b)), want.ridge!.betas.map((b) => Array.from(b)));
  assert.equal(back.ridge!.calibrations, want.ridge!.calibrations);
  assert.equal(back.ridge!.lambdas, [0.01, 1]);
  assert.is(loadFederatedModel(join(tmp.dir, 'absent')), undefined);
});

test('a saved model of another model configuration is kept as the one backup, not overwritten', () => {
  const dir = join(tmp.dir, 'other-layout');
  mkdirSync(dir, { recursive: true });
  const withMetrics = (metrics: string[]): FederatedModel => {
    const m = parseFederationModel({ metrics, lookback: 4, horizon: 2, hiddenUnits: 3 });
    return { ...sample(), model: m, configHash: modelConfigHash(m), scaler: { mean: metrics.map(() => 1), std: metrics.map(() => 1) } };
  };
  saveFederatedModel(dir, sample());
  saveFederatedModel(dir, sample()); // same configuration: replaced in place, no backup
  assert.equal(readdirSync(dir), [FEDERATED_MODEL_FILE]);
  saveFederatedModel(dir, withMetrics(['cpu_busy_pct']));
  const backup = join(dir, `${FEDERATED_MODEL_FILE}${OTHER_LAYOUT_SUFFIX}`);
  assert.match(readFileSync(backup, 'latin1'), modelConfigHash(model), 'the previous configuration is kept');
  assert.equal(loadFederatedModel(dir)!.model.metrics, ['cpu_busy_pct']);
  saveFederatedModel(dir, withMetrics(['load1']));
  assert.match(readFileSync(backup, 'latin1'), modelConfigHash(withMetrics(['cpu_busy_pct']).model), 'the newest other one replaces it');
  assert.equal(readdirSync(dir).sort(), [FEDERATED_MODEL_FILE, `${FEDERATED_MODEL_FILE}${OTHER_LAYOUT_SUFFIX}`]);
});

test('a damaged, truncated or foreign model file is STATE_CORRUPT and can be moved aside', () => {
  const dir = join(tmp.dir, 'bad');
  mkdirSync(dir, { recursive: true });
  const path = saveFederatedModel(dir, sample());
  const good = readFileSync(path);
  const cases: [string, Buffer][] = [
    ['flipped weight byte', Buffer.from(good.map((b, i) => (i === good.length - 3 ? b ^ 1 : b)))],
    ['truncated', good.subarray(0, good.length - 8)],
    ['bad magic', Buffer.concat([Buffer.from('NOTAFILE'), good.subarray(8)])],
    ['header of another model', Buffer.from(good.toString('latin1').replace('"lookback":4', '"lookback":5'), 'latin1')],
  ];
  for (const [what, bytes] of cases) {
    writeFileSync(path, bytes);
    try {
      loadFederatedModel(dir);
      assert.unreachable(what);
    } catch (err) {
      assert.ok(isIcosflError(err, 'STATE_CORRUPT'), `${what}: ${String(err)}`);
      assert.match((err as Error).message, new RegExp(FEDERATED_MODEL_FILE));
    }
  }
  const aside = moveAside(dir);
  assert.ok(existsSync(aside) && !existsSync(path));
  assert.equal(readdirSync(dir).filter((f) => f.startsWith(`${FEDERATED_MODEL_FILE}.corrupt`)), [`${FEDERATED_MODEL_FILE}.corrupt`]);
});

test('forecast score: each forecast is scored once its samples arrived, against persistence', () => {
  const s = new ForecastScore(['a'], 2);
  // Origin at t=10 (last value 5), forecast 6 then 7; actual 6 then 9.
  s.record(10, Float32Array.from([6, 7]), Float32Array.from([5]));
  s.settle(Float64Array.from([10, 11]), Float32Array.from([5, 6]));
  assert.is(s.summary().a!.count, 0, 'one of two samples: not yet scored');
  s.settle(Float64Array.from([10, 11, 12]), Float32Array.from([5, 6, 9]));
  const a = s.summary().a!;
  assert.is(a.count, 1);
  assert.ok(Math.abs(a.rmse - Math.sqrt((0 + 4) / 2)) < 1e-9);
  assert.ok(Math.abs(a.persistence_rmse - Math.sqrt((1 + 16) / 2)) < 1e-9);
  assert.ok(Math.abs(a.mae - 1) < 1e-9 && Math.abs(a.persistence_mae - 2.5) < 1e-9);
  assert.equal(a.rmse_by_step, [0, 2]);
  s.settle(Float64Array.from([10, 11, 12]), Float32Array.from([5, 6, 9]));
  assert.is(s.summary().a!.count, 1, 'settled once');
  s.record(9, Float32Array.from([1, 1]), Float32Array.from([1]));
  s.record(12, Float32Array.from([9, 9]), Float32Array.from([9]));
  s.settle(Float64Array.from([12, 13]), Float32Array.from([9, NaN]));
  assert.is(s.summary().a!.count, 1, 'an older origin is ignored; a missing actual is not scored');
});

test('ring data: the model metrics picked from the ring in the model order; waiting, incompatible', () => {
  const C = 3;
  const n = 40;
  const values = Float32Array.from({ length: n * C }, (_, i) => (i % C) * 100 + Math.floor(i / C));
  const ring = { size: n, latest: (k: number) => ({ timestamps: Float64Array.from({ length: Math.min(k, n) }, (_, i) => n - Math.min(k, n) + i), values: values.slice((n - Math.min(k, n)) * C) }) };
  const data = new RingFederationData(ring, ['load1', 'mem_used_pct', 'cpu_busy_pct']);
  const m = parseFederationModel({ metrics: ['cpu_busy_pct', 'mem_used_pct'], lookback: 4, horizon: 2, minWindows: 8 });
  const got = data.sessionWindows(m);
  assert.ok('train' in got, JSON.stringify(got));
  if (!('train' in got)) return;
  assert.is(got.train.channels, 2);
  assert.equal(Array.from(got.train.x.subarray(0, 4)), [200, 100, 201, 101], 'cpu then mem, as the model orders them');
  assert.equal(data.sessionWindows({ ...m, metrics: ['gpu_util_pct'] }), { state: 'incompatible', reason: "the federation's model needs metric 'gpu_util_pct', which this agent does not sample (sampler.metrics)", windows: 0 });
  const waiting = data.sessionWindows({ ...m, minWindows: 1000 });
  assert.ok('state' in waiting && waiting.state === 'waiting-for-data', JSON.stringify(waiting));
});

test('agent ids and seed offsets', () => {
  assert.is(agentIdOf('edge-7'), 'edge-7');
  assert.match(agentIdOf(''), /^[A-Za-z0-9._-]{1,64}$/);
  assert.throws(() => agentIdOf('a/b'), /agent_id/);
  assert.is(agentSeedOffset('edge-7'), agentSeedOffset('edge-7'));
  assert.is.not(agentSeedOffset('edge-7'), agentSeedOffset('edge-8'));
  assert.is(agentSeedOffset('x') % 1000, 0);
});

test.run();
