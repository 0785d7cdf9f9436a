import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { calibrate, defaultCandidates, selectBackend, type Candidate } from '../../../agent/trainer/backends.js';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { fusedEngine } from '../../../agent/trainer/fused-step.js';
import { tf } from '../../../agent/trainer/tf.js';

const spec = { kind: 'mlp' as const, lookback: 8, horizon: 2, channels: 2, hiddenUnits: 8 };
const quick = { batch_size: 32, calibration_batches: 2 };

test('a candidate that fails to load is reported and the next one is used', async () => {
  // Real failures: the optional tfjs-node packages are not installed here, this VM has no
  // Vulkan driver for Dawn, and the WASM backend is pointed at a directory without its binaries.
  // With the native step forced out too, plain JS is what remains.
  const candidates = defaultCandidates({ wasmDir: '/nonexistent-wasm-dir/' });
  const { chosen, statuses } = await selectBackend(parseTrainerConfig(quick), spec, { candidates: candidates.filter((c) => c.name !== 'native') });
  assert.is(chosen, 'cpu');
  assert.is(tf.getBackend(), 'cpu');
  const by = Object.fromEntries(statuses.map((s) => [s.name, s]));
  assert.equal(statuses.map((s) => s.name), ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'wasm', 'cpu']);
  assert.match(by['wasm']!.reason!, /tfjs-backend-wasm\.wasm not found in \/nonexistent-wasm-dir\//);
  assert.match(by['tfjs-node-gpu']!.reason!, /@tensorflow\/tfjs-node-gpu is not installed/);
  assert.ok(!by['webgpu']!.loaded && by['webgpu']!.reason!.length > 0);
  assert.ok(by['cpu']!.loaded);
  assert.is(fusedEngine(), undefined);
});

test('without WASM the native step still loads, and predicts on plain JS', async () => {
  const candidates = defaultCandidates({ wasmDir: '/nonexistent-wasm-dir/' }).filter((c) => c.name === 'native' || c.name === 'wasm');
  const { chosen, statuses } = await selectBackend(parseTrainerConfig(quick), spec, { candidates });
  assert.is(chosen, 'native');
  assert.match(statuses[0]!.device!, /^C\+\+ fused step on a worker thread; forward passes in C\+\+, LSTMs on cpu$/);
  assert.is(tf.getBackend(), 'cpu');
  assert.is(fusedEngine()?.kind, 'native');
});

test('a throwing candidate never stops selection; forcing an unavailable backend is BACKEND_UNAVAILABLE', async () => {
  const broken: Candidate = { name: 'tfjs-node', load: () => Promise.reject(new Error('libtensorflow.so: cannot open shared object file')), activate: () => Promise.resolve() };
  const cpu = defaultCandidates().find((c) => c.name === 'cpu')!;
  const { chosen, statuses } = await selectBackend(parseTrainerConfig(quick), spec, { candidates: [broken, cpu] });
  assert.is(chosen, 'cpu');
  assert.is(statuses[0]!.reason, 'libtensorflow.so: cannot open shared object file');
  try {
    await selectBackend(parseTrainerConfig({ ...quick, backend: 'tfjs-node' }), spec, { candidates: [broken, cpu] });
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'BACKEND_UNAVAILABLE'));
    assert.match((err as Error).message, /tfjs-node: libtensorflow\.so/);
  }
});

test('auto picks the fastest calibrated backend, not the first in preference order', async () => {
  const { chosen, statuses } = await selectBackend(parseTrainerConfig(quick), spec, { calibrateAll: true });
  const loaded = statuses.filter((s) => s.loaded);
  assert.ok(loaded.length >= 3, 'native, wasm and cpu load here');
  for (const s of loaded) assert.ok(s.samplesPerS! > 0, `${s.name} calibrated`);
  const fastest = loaded.reduce((a, b) => (b.samplesPerS! > a.samplesPerS! ? b : a));
  assert.is(chosen, fastest.name);
  // The fused engines train beside tfjs and predict on its WASM backend.
  assert.is(tf.getBackend(), fastest.name === 'native' ? 'wasm' : fastest.name);
  assert.is(fusedEngine()?.kind, fastest.name === 'native' ? 'native' : undefined);
});

test('calibration makes train() calls shaped like the job: one per batch on tfjs, one per run on a fused engine', async () => {
  const config = parseTrainerConfig({ ...quick, calibration_batches: 4 });
  const windowsPerCall = async (backend: string) => {
    const candidate = defaultCandidates().find((c) => c.name === backend)!;
    await candidate.load();
    await candidate.activate();
    const calls: number[] = [];
    const train = Forecaster.prototype.train;
    Forecaster.prototype.train = function (ws, opts) {
      calls.push(ws.n);
      return train.call(this, ws, opts);
    };
    try {
      assert.ok((await calibrate(spec, config)) > 0);
    } finally {
      Forecaster.prototype.train = train;
    }
    return calls;
  };
  // A warm-up batch, then 3 runs of 4 batches of 32 windows.
  assert.equal(await windowsPerCall('wasm'), [32, ...new Array<number>(12).fill(32)]);
  assert.equal(await windowsPerCall('native'), [32, 128, 128, 128]);
});

test('config rejects unknown backends and models with the key named', () => {
  assert.throws(() => parseTrainerConfig({ backend: 'cuda' }), /backend/);
  assert.throws(() => parseTrainerConfig({ model: 'transformer' }), /model/);
  assert.throws(() => parseTrainerConfig({ lookbak: 3 }), /lookbak/);
  assert.is(parseTrainerConfig({}).backend, 'auto');
});

test.run();
