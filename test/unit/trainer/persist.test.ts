import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { loadModel, MODEL_FILE, saveModel } from '../../../agent/trainer/persist.js';
import { fitScaler } from '../../../agent/trainer/scaler.js';
import { buildWindows, chronologicalSplit } from '../../../agent/trainer/windows.js';
import { tempDir } from '../../helpers/paths.js';

const tmp = tempDir('icosfl-persist-');
test.after(() => tmp.cleanup());

const spec = { kind: 'mlp' as const, lookback: 8, horizon: 3, channels: 2, hiddenUnits: 6 };
// A noisy two-channel series so training moves the weights away from zero.
const series = Float32Array.from({ length: 2 * 300 }, (_, i) => (i % 2 ? 40 + 10 * Math.sin(i / 17) : 20 + 5 * Math.cos(i / 9)) + ((i * 7919) % 13) / 13);
const ws = buildWindows(series, 2, 8, 3);

async function trained(): Promise<Forecaster> {
  const f = new Forecaster(spec, { seed: 3, learningRate: 0.01, scaler: fitScaler(ws) });
  await f.train(ws, { epochs: 3, batchSize: 32, seed: 1 });
  return f;
}

function expectCorrupt(dir: string, pattern: RegExp): void {
  try {
    loadModel(dir);
    assert.unreachable('expected STATE_CORRUPT');
  } catch (err) {
    assert.ok(isIcosflError(err, 'STATE_CORRUPT'), String(err));
    assert.match((err as Error).message, pattern);
  }
}

test('save/load round-trips predictions exactly, with scaler, version and round', async () => {
  const f = await trained();
  const { train, validation } = chronologicalSplit(ws, 0.25);
  f.calibrateOutput(train, validation);
  const before = f.predict(ws.x, ws.n);
  saveModel(tmp.dir, { spec, scaler: f.scaler!, channelNames: ['cpu', 'mem'], version: 4, round: 2, savedAt: '2026-01-01T00:00:00Z', weights: f.getWeights(), calibration: f.calibration! });
  f.dispose();
  assert.equal(readdirSync(tmp.dir), [MODEL_FILE], 'no temporary file is left behind');
  const saved = loadModel(tmp.dir)!;
  assert.equal(saved.spec, spec);
  assert.equal(saved.channelNames, ['cpu', 'mem']);
  assert.is(saved.version, 4);
  assert.is(saved.round, 2);
  assert.equal(saved.calibration, f.calibration);
  const g = new Forecaster(saved.spec, { seed: 99, learningRate: 0.01, scaler: saved.scaler });
  g.setWeights(saved.weights);
  g.calibration = saved.calibration;
  assert.equal(Array.from(g.predict(ws.x, ws.n)), Array.from(before));
  g.dispose();
});

test('no model yet is undefined, not an error', () => {
  const empty = tempDir('icosfl-persist-empty-');
  assert.is(loadModel(empty.dir), undefined);
  empty.cleanup();
});

test('damaged files are STATE_CORRUPT with the reason', () => {
  const path = join(tmp.dir, MODEL_FILE);
  const good = readFileSync(path);
  const flip = Buffer.from(good);
  flip[flip.length - 1]! ^= 0xff;
  writeFileSync(path, flip);
  expectCorrupt(tmp.dir, /checksum mismatch/);
  writeFileSync(path, good.subarray(0, good.length - 4));
  expectCorrupt(tmp.dir, /body is \d+ bytes, the header announces \d+/);
  writeFileSync(path, Buffer.from('not a model at all'));
  expectCorrupt(tmp.dir, /bad magic/);
  const header = Buffer.from(good);
  header.write('{', 12 + 2); // break the JSON
  writeFileSync(path, header);
  expectCorrupt(tmp.dir, /malformed header/);
  // A calibration for the wrong number of channels (re-checksummed: only the header changes).
  const len = good.readUInt32LE(8);
  const h = JSON.parse(good.subarray(12, 12 + len).toString('utf8')) as { calibration: { blend: number[] } };
  h.calibration.blend.push(1);
  const hb = Buffer.from(JSON.stringify(h));
  const lb = Buffer.alloc(4);
  lb.writeUInt32LE(hb.length);
  writeFileSync(path, Buffer.concat([good.subarray(0, 8), lb, hb, good.subarray(12 + len)]));
  expectCorrupt(tmp.dir, /output calibration does not have 2 channels/);
  writeFileSync(path, good);
  assert.ok(loadModel(tmp.dir));
});

test.run();
