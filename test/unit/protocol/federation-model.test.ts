import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ZodError } from 'zod';
import { createEngines, specOf } from '../../../agent/federation/engines.js';
import { Forecaster } from '../../../agent/trainer/forecaster.js';
import { headCount, headStatistics, packStatistics, packedLength } from '../../../agent/trainer/ridge.js';
import { fitScaler } from '../../../agent/trainer/scaler.js';
import { buildWindows } from '../../../agent/trainer/windows.js';
import { seededRandom } from '../../../common/seeded-random.js';
import {
  DEFAULT_FEDERATION_MODEL,
  MODEL_KINDS,
  modelConfigHash,
  modelParamCount,
  parseFederationModel,
  ridgeHeads,
  ridgePayloadLength,
  type FederationModel,
} from '../../../common/protocol/federation-model.js';

// federation-model.ts: parsing, the config hash, and the layout lengths the coordinator checks
// updates against, compared with what the agent's own trainer builds.

function zodIssues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ZodError);
    return (err as ZodError).issues.map((i) => `${i.path.join('.')}:${i.code}`);
  }
  assert.unreachable('parsed');
  return [];
}

test('parse fills defaults, keeps what is given', () => {
  assert.equal(parseFederationModel({}), { ...DEFAULT_FEDERATION_MODEL });
  assert.equal(parseFederationModel(undefined), { ...DEFAULT_FEDERATION_MODEL });
  const m = parseFederationModel({ metrics: ['cpu'], kind: 'lstm', rounds: 3 });
  assert.equal(m, { ...DEFAULT_FEDERATION_MODEL, metrics: ['cpu'], kind: 'lstm', rounds: 3 });
  assert.equal(DEFAULT_FEDERATION_MODEL.metrics, ['cpu_busy_pct', 'mem_used_pct']);
  assert.ok(Object.isFrozen(DEFAULT_FEDERATION_MODEL));
});

test('parse is strict: unknown keys and bad values are ZodErrors', () => {
  assert.equal(zodIssues(() => parseFederationModel({ hidden_units: 8 })), [':unrecognized_keys']);
  assert.equal(zodIssues(() => parseFederationModel({ lookback: 1 })), ['lookback:too_small']);
  assert.equal(zodIssues(() => parseFederationModel({ kind: 'gru' })), ['kind:invalid_enum_value']);
  assert.equal(zodIssues(() => parseFederationModel({ metrics: [] })), ['metrics:too_small']);
  assert.equal(zodIssues(() => parseFederationModel({ metrics: ['cpu', 'cpu'] })), ['metrics:custom']);
  assert.equal(zodIssues(() => parseFederationModel({ metrics: ['CPU'] })), ['metrics.0:invalid_string']);
  assert.equal(zodIssues(() => parseFederationModel({ learningRate: 0 })), ['learningRate:too_small']);
  assert.equal(zodIssues(() => parseFederationModel({ hiddenUnits: 2.5 })), ['hiddenUnits:invalid_type']);
});

test('modelConfigHash: 32 hex digits, independent of key order', () => {
  const m = parseFederationModel({});
  const h = modelConfigHash(m);
  assert.match(h, /^[0-9a-f]{32}$/);
  const reversed = Object.fromEntries(Object.entries(m).reverse()) as FederationModel;
  assert.not.equal(Object.keys(reversed), Object.keys(m));
  assert.is(modelConfigHash(reversed), h);
  assert.is(modelConfigHash(parseFederationModel({})), h, 'stable across parses');
});

test('modelConfigHash changes with every field', () => {
  const base = parseFederationModel({});
  const changed: Record<keyof FederationModel, unknown> = {
    metrics: ['mem_used_pct', 'cpu_busy_pct'], // order matters: the channels are columns
    kind: 'linear',
    lookback: 13,
    horizon: 6,
    hiddenUnits: 33,
    channelIndependent: false,
    batchSize: 31,
    learningRate: 0.0021,
    localEpochs: 3,
    rounds: 41,
    fineTuneEpochs: 5,
    ridgeFeatures: 255,
    mixMemory: 7,
    validationFraction: 0.21,
    calibrate: false,
    seed: 43,
    maxWindows: 5001,
    minWindows: 9,
    dropoutRate: 0.25,
  };
  assert.equal(Object.keys(changed).sort(), Object.keys(base).sort(), 'every field is covered');
  const seen = new Set([modelConfigHash(base)]);
  for (const [k, v] of Object.entries(changed)) {
    const h = modelConfigHash(parseFederationModel({ ...base, [k]: v }));
    assert.not.ok(seen.has(h), `changing ${k} left the hash as it was (or equal to another change)`);
    seen.add(h);
  }
  assert.is(seen.size, 20);
});

/** Layouts across kinds, channel modes and sizes. */
function layouts(): FederationModel[] {
  const out: FederationModel[] = [];
  for (const kind of MODEL_KINDS) {
    for (const channelIndependent of [true, false]) {
      for (const [metrics, lookback, horizon, hiddenUnits, ridgeFeatures] of [
        [['cpu'], 4, 1, 3, 8],
        [['cpu', 'mem', 'disk_io'], 12, 5, 16, 32],
        [['a', 'b'], 7, 3, 5, 0],
      ] as const) {
        out.push(parseFederationModel({ kind, channelIndependent, metrics, lookback, horizon, hiddenUnits, ridgeFeatures }));
      }
    }
  }
  return out;
}

test('modelParamCount equals the weight count of the forecaster the agent builds', () => {
  let checked = 0;
  for (const m of layouts()) {
    const f = new Forecaster(specOf(m), { seed: 1, learningRate: 0.001 });
    try {
      assert.is(modelParamCount(m), f.weightCount, `${m.kind} ${m.channelIndependent ? 'channel-independent' : 'joint'} ${m.metrics.length}×${m.lookback}→${m.horizon}, ${m.hiddenUnits} hidden`);
      assert.is(f.getWeights().length, f.weightCount);
    } finally {
      f.dispose();
    }
    checked++;
  }
  assert.is(checked, 18);
  // Spot values, worked by hand: mlp, 1 channel, I = 4, O = 2, D = 3: 4·2 + 4·3 + 3 + 3·2.
  assert.is(modelParamCount(parseFederationModel({ metrics: ['cpu'], lookback: 4, horizon: 2, hiddenUnits: 3 })), 29);
  // LSTM, joint over 2 channels, D = 4, O = 2·3: 2·16 + 4·16 + 16 + 4·6.
  assert.is(modelParamCount(parseFederationModel({ kind: 'lstm', channelIndependent: false, metrics: ['a', 'b'], horizon: 3, hiddenUnits: 4 })), 136);
});

test('ridgePayloadLength equals the length of the ridge statistics the agent packs', () => {
  const rnd = seededRandom(5);
  let withRidge = 0;
  for (const m of layouts()) {
    const what = `${m.kind} ${m.channelIndependent ? 'channel-independent' : 'joint'} ${m.metrics.length} metrics, ${m.ridgeFeatures} features`;
    const engines = createEngines(m);
    try {
      assert.is(engines.model.weightCount, modelParamCount(m), what);
      if (!engines.ridge) {
        assert.is(ridgePayloadLength(m), 0, what);
        assert.ok(m.kind === 'lstm' || m.ridgeFeatures === 0, `${what}: the agent built no ridge model`);
        continue;
      }
      const f = engines.ridge;
      const C = m.metrics.length;
      const channels = m.channelIndependent ? 1 : C;
      const inputs = m.lookback * channels;
      const outputs = m.horizon * channels;
      assert.is(ridgePayloadLength(m), packedLength(inputs + m.ridgeFeatures, outputs, headCount(f)), what);
      assert.is(ridgeHeads(m), headCount(f), what);
      // And what the agent actually sends: its packed statistics over some windows.
      const values = Float32Array.from({ length: 60 * C }, () => 50 + 10 * rnd());
      const ws = buildWindows(values, C, m.lookback, m.horizon);
      f.scaler = fitScaler(ws);
      assert.is(packStatistics(headStatistics(f, ws)).length, ridgePayloadLength(m), what);
      withRidge++;
    } finally {
      engines.dispose();
    }
  }
  assert.is(withRidge, 8, 'linear and mlp, both channel modes, two sizes with ridge features');
  // Worked by hand: 1 head, d = 4 + 8 = 12, O = 2: 12·13/2 + 12·2.
  assert.is(ridgePayloadLength(parseFederationModel({ metrics: ['cpu'], lookback: 4, horizon: 2, hiddenUnits: 3, ridgeFeatures: 8 })), 102);
});


test('modelConfigHash: dropout off leaves the hash of a config from before the key', () => {
  const m = parseFederationModel({});
  const { dropoutRate: _off, ...before } = m;
  void _off;
  assert.is(modelConfigHash(before as FederationModel), modelConfigHash(m));
  assert.is.not(modelConfigHash({ ...m, dropoutRate: 0.5 }), modelConfigHash(m));
});

test('parseFederationModel: dropout only for the mlp', () => {
  assert.is(parseFederationModel({ dropoutRate: 0.5 }).dropoutRate, 0.5);
  assert.throws(() => parseFederationModel({ kind: 'lstm', dropoutRate: 0.5 }), /mlp/);
  assert.throws(() => parseFederationModel({ dropoutRate: 0.95 }));
});

test.run();
