import { parseTrainerConfig } from '../../agent/trainer/config.js';
import { selectBackend } from '../../agent/trainer/backends.js';
import { Forecaster, trainWithValidation } from '../../agent/trainer/forecaster.js';
import { specFromConfig } from '../../agent/trainer/model.js';
import { fitScaler } from '../../agent/trainer/scaler.js';
import { tf } from '../../agent/trainer/tf.js';
import { buildWindows, chronologicalSplit } from '../../agent/trainer/windows.js';
import { fedAvg } from '../../coordinator/strategy/fedavg.js';

/**
 * trainer-rss: a daemon trains for months, so 1,000 training rounds (BENCH_ROUNDS) of what the
 * job does each round — refit the scaler, train with validation, swap in a (Fed)averaged model,
 * calibrate the output, predict — on the default model, with RSS and live tensors sampled along
 * the way. Flat = the last sample within a few MB of the one after warm-up (round 100). Each
 * sample also gives V8's heap and the memory outside it (external: ArrayBuffers, WASM memory),
 * so a one-off step in RSS can be told from a leak; rss_growth_second_half_mb is the steady
 * state's growth. On `native` (this 2-core VM, 2026-11-28) RSS steps up once by ~15 MB,
 * somewhere between rounds 1,300 and 2,000, when V8's heap grows from 31 to 47 MB (heap_mb;
 * external unchanged, tensors 4 throughout). v8.getHeapSpaceStatistics() shows it is the young
 * generation doubling from 16 to 32 MB, its largest size. After the step, RSS moved 0.3 MB over
 * the next 10,000 rounds.
 * BENCH_BACKEND (default wasm) picks the backend: `BENCH_BACKEND=webgpu ICOSFL_WEBGPU_SOFTWARE=1`
 * runs the fused GPU step on Mesa's llvmpipe, whose "GPU memory" is this process's RSS, so a
 * leaked GPU buffer shows here; `BENCH_BACKEND=native` runs the C++ step (its moments, scratch
 * and per-call input copies are native memory, also in RSS).
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1000);
const config = parseTrainerConfig({ backend: process.env.BENCH_BACKEND ?? 'wasm', epochs: 1, batch_size: 128 });
const spec = specFromConfig(config, 2);
await selectBackend(config, spec);
// A deterministic two-channel signal (daily-ish cycle + noise); only memory is measured here.
const series = Float32Array.from({ length: 2 * 1200 }, (_, i) => 50 + 20 * Math.sin(i / 90) + ((i * 2654435761) % 1000) / 100);
const ws = buildWindows(series, 2, config.lookback, config.horizon);
const f = new Forecaster(spec, { seed: 1, learningRate: config.learning_rate });
const samples: { round: number; rss_mb: number; heap_mb: number; external_mb: number; tensors: number }[] = [];
const mb = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));
const gc = (globalThis as { gc?: () => void }).gc;
const started = performance.now();
for (let round = 1; round <= ROUNDS; round++) {
  const { train, validation } = chronologicalSplit(ws, config.validation_fraction);
  f.scaler = fitScaler(train);
  await trainWithValidation(f, train, validation, { epochs: 1, batchSize: config.batch_size, seed: round });
  const w = f.getWeights();
  f.setWeights(fedAvg([{ weights: w, samples: train.n }, { weights: w, samples: 1 }]));
  f.calibrateOutput(train, validation);
  f.predict(validation.x.subarray(0, spec.lookback * spec.channels), 1);
  if (round % 100 === 0 || round === 1) {
    gc?.();
    const m = process.memoryUsage();
    const s = { round, rss_mb: mb(m.rss), heap_mb: mb(m.heapTotal), external_mb: mb(m.external), tensors: tf.memory().numTensors };
    samples.push(s);
    process.stderr.write(`[trainer-rss] ${JSON.stringify(s)}\n`);
  }
}
const warm = samples.find((s) => s.round === 100) ?? samples[0]!;
const last = samples[samples.length - 1]!;
const middle = samples.find((s) => s.round >= ROUNDS / 2) ?? warm;
f.dispose();
process.stdout.write(
  JSON.stringify({
    bench: 'trainer-rss',
    rounds: ROUNDS,
    backend: config.backend,
    inference_backend: tf.getBackend(),
    windows_per_round: ws.n,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    rss_mb_after_100: warm.rss_mb,
    rss_mb_last: last.rss_mb,
    rss_growth_mb: Number((last.rss_mb - warm.rss_mb).toFixed(1)),
    rss_growth_second_half_mb: Number((last.rss_mb - middle.rss_mb).toFixed(1)),
    tensors_after_100: warm.tensors,
    tensors_last: last.tensors,
    samples,
  }) + '\n',
);
