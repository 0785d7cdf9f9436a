import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTrainerConfig } from '../../../agent/trainer/config.js';
import { startTrainingJob, type Forecast, type TrainingJob } from '../../../agent/trainer/job.js';
import { loadModel, MODEL_FILE, OTHER_LAYOUT_SUFFIX, saveModel, type SavedModel } from '../../../agent/trainer/persist.js';
import { tf } from '../../../agent/trainer/tf.js';
import { childLogger } from '../../../common/log.js';
import { MetricRing } from '../../../native/ring.js';
import { twoNabCpuChannels } from '../../helpers/nab-traces.js';
import { tempDir } from '../../helpers/paths.js';

// The daemon's training job on the real native ring, filled with two real NAB EC2 CPU traces
// (4,032 samples each) as two channels of one machine.
const tmp = tempDir('icosfl-job-');
const stateDir = join(tmp.dir, 'state');
const { values, timestampsMs } = twoNabCpuChannels(tmp.dir);
const ring = MetricRing.open({ path: join(tmp.dir, 'metrics.ring'), capacity: 8192, channels: 2, schemaTag: 'cpu_a,cpu_b' });
ring.pushBatch(timestampsMs, values);
test.after(() => {
  ring.close();
  tmp.cleanup();
});

const base = { backend: 'wasm', model: 'mlp', lookback: 12, horizon: 3, hidden_units: 16, epochs: 2, batch_size: 128, train_interval_s: 3600, min_samples: 200 };

function start(overrides: Record<string, unknown> = {}) {
  const handlers = new Map<string, (req: Record<string, unknown>) => Promise<unknown>>();
  const registry = new Registry();
  const job = startTrainingJob({
    ring,
    channelNames: ['cpu_a', 'cpu_b'],
    stateDir,
    config: parseTrainerConfig({ ...base, ...overrides }),
    logger: childLogger('trainer-test'),
    registry,
    control: { handle: (name, fn) => handlers.set(name, fn) },
  });
  return { job, registry, predict: (req: Record<string, unknown> = {}) => handlers.get('predict')!(req) as Promise<Forecast> };
}

async function until(job: TrainingJob, ok: (s: Record<string, unknown>) => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const s = job.status();
    if (ok(s)) return;
    if (s.state === 'failed') throw new Error(`job failed: ${String(s.lastError)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(job.status())}`);
}

let firstForecast: Forecast;

test('trains from the ring, saves the model, answers predict and exports gauges', async () => {
  const { job, registry, predict } = start();
  await until(job, (s) => s.version === 1 && s.state === 'idle', 'the first local round');
  const st = job.status();
  assert.is(st.backend, 'wasm');
  const last = st.lastRound as { validationLoss: number; persistenceLoss: number; windows: number; calibration: { blend: number[]; changeLimit: number[] } };
  assert.ok(last.windows > 3000);
  // The round fits the output calibration and saves it with the model.
  assert.is(last.calibration.blend.length, 2);
  assert.ok(last.calibration.changeLimit.every((l) => l > 0));
  assert.equal(loadModel(stateDir)!.calibration, last.calibration);
  assert.ok(last.validationLoss < last.persistenceLoss, `trained ${last.validationLoss} vs persistence ${last.persistenceLoss}`);
  assert.ok(existsSync(join(stateDir, MODEL_FILE)));

  firstForecast = await predict({ horizon: 2 });
  assert.is(firstForecast.version, 1);
  assert.equal(Object.keys(firstForecast.forecast), ['cpu_a', 'cpu_b']);
  for (const v of Object.values(firstForecast.forecast)) assert.ok(v.length === 2 && v.every(Number.isFinite));
  try {
    await predict({ horizon: 9 });
    assert.unreachable('horizon 9 > 3 must be refused');
  } catch (err) {
    assert.match((err as Error).message, /horizon must be an integer from 1 to 3/);
  }

  const text = await registry.metrics();
  assert.match(text, /icosfl_forecast\{metric="cpu_b",steps_ahead="3"\} [0-9.]+/);
  assert.match(text, /icosfl_model_version 1/);
  assert.match(text, /icosfl_trainer_rounds_total\{outcome="trained"\} 1/);

  await job.stop();
  assert.is(job.status().state, 'stopped');
});

test('a restarted job loads the saved model and predicts exactly as before', async () => {
  const { job, predict } = start({ min_samples: 1_000_000 });
  const again = await predict({ horizon: 2 });
  assert.is(again.version, 1);
  assert.equal(again.forecast, firstForecast.forecast);
  await job.stop();
});

test('a corrupt model file is moved aside and a fresh model trained; no crash', async () => {
  writeFileSync(join(stateDir, MODEL_FILE), 'garbage');
  const { job } = start({ epochs: 1 });
  await until(job, (s) => s.version === 1 && s.state === 'idle', 'a round after the corrupt file');
  assert.ok(readdirSync(stateDir).includes(`${MODEL_FILE}.corrupt`), 'kept under the one backup name');
  await job.stop();
});

test('too few windows on either side of the validation split: the job waits instead of failing', async () => {
  // 30 samples with lookback 12 + horizon 3 give 16 windows, above min_samples 5, but the split
  // drops 14 at its boundary, leaving no training window.
  const small = MetricRing.open({ path: join(tmp.dir, 'small.ring'), capacity: 64, channels: 2, schemaTag: 'cpu_a,cpu_b' });
  small.pushBatch(Float64Array.from({ length: 30 }, (_, i) => 1.7e12 + i * 300_000), values.subarray(0, 60));
  const job = startTrainingJob({
    ring: small,
    channelNames: ['cpu_a', 'cpu_b'],
    stateDir: join(tmp.dir, 'small-state'),
    config: parseTrainerConfig({ ...base, min_samples: 5 }),
    logger: childLogger('trainer-test'),
    registry: new Registry(),
    control: { handle: () => undefined },
  });
  try {
    await until(job, (s) => s.state === 'waiting-for-data', 'the job to wait for data');
    assert.is.not(job.status().state, 'failed');
    assert.is(job.status().version, 0);
  } finally {
    await job.stop();
    small.close();
  }
});

test('tensors are released when jobs stop', () => {
  // Only the tensors of tfjs-layers' global state may remain; every model and optimizer is gone.
  assert.ok(tf.memory().numTensors < 5, `numTensors ${tf.memory().numTensors}`);
});

test('a saved model of another layout is kept as the one backup, not overwritten by the fresh one', async () => {
  const other = (hiddenUnits: number): SavedModel => ({
    spec: { kind: 'mlp', lookback: 12, horizon: 3, channels: 2, hiddenUnits },
    scaler: { mean: [0, 0], std: [1, 1] },
    channelNames: ['cpu_a', 'cpu_b'],
    version: 7,
    round: 0,
    savedAt: new Date(0).toISOString(),
    weights: new Float32Array(10).fill(hiddenUnits),
  });
  const backup = join(stateDir, `${MODEL_FILE}${OTHER_LAYOUT_SUFFIX}`);
  for (const hidden of [5, 6]) {
    saveModel(stateDir, other(hidden));
    const { job } = start({ epochs: 1 });
    await until(job, (s) => s.version === 1 && s.state === 'idle', `a fresh round beside the hidden-${hidden} model`);
    await job.stop();
    assert.match(readFileSync(backup, 'utf8'), `"hiddenUnits":${hidden}`, 'the other layout is kept');
    assert.is(loadModel(stateDir)?.spec.hiddenUnits, 16, 'the fresh model is saved under the usual name');
  }
  assert.equal(readdirSync(stateDir).filter((f) => f.startsWith(`${MODEL_FILE}.other`)), [`${MODEL_FILE}${OTHER_LAYOUT_SUFFIX}`], 'one backup, the newest');
});

test.run();
