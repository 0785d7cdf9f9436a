import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from '../../common/cli.js';
import { resolveLogFormat } from '../../common/config/log-level.js';
import { parseDecimal } from '../../common/decimal.js';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import { createLogger, resolveLogOutput } from '../../common/log.js';
import { ZodError } from 'zod';
import { describeIssue } from '../../common/config/problems.js';
import { inputError, isSystemError } from '../../common/system-errors.js';
import type { MethodScores } from '../experiment.js';
import { DEFAULT_FEDERATION_MODEL, parseFederationModel } from '../../common/protocol/federation-model.js';
import { BACKEND_NAMES } from '../../agent/trainer/config.js';
import { checkOutputFile } from '../output-paths.js';
import { parseResampleFlag } from '../resample.js';

import { DEFAULTS } from '../../agent/config/schema.js';

const D = DEFAULT_FEDERATION_MODEL;
const PRIVACY = DEFAULTS.privacy;
const BACKENDS = ['auto', ...BACKEND_NAMES].join('|');

function positive(values: Record<string, unknown>, name: string, fallback: number, max = Infinity): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!(v > 0 && v < max)) throw new RangeError(`--${name} must be a number > 0${max < Infinity ? ` and < ${max}` : ''}, got '${String(raw)}'`);
  return v;
}

/** The flag that set each validated field, so a schema refusal names what the user typed. */
const FLAG_OF: Record<string, string> = {
  metrics: 'metrics', kind: 'model', model: 'model', lookback: 'lookback', horizon: 'horizon', hiddenUnits: 'hidden', hidden_units: 'hidden', rounds: 'rounds',
  localEpochs: 'epochs', batchSize: 'batch-size', batch_size: 'batch-size', learningRate: 'learning-rate', seed: 'seed', fineTuneEpochs: 'fine-tune',
  ridgeFeatures: 'ridge-features', mixMemory: 'mix-memory', backend: 'backend', channelIndependent: 'joint', channel_independent: 'joint', calibrate: 'no-calibration',
};

/** Runs a zod-validated parse; a refusal becomes a RangeError naming the flag (exit 64), not zod's JSON. */
function flagParse<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof ZodError)) throw err;
    const words = err.issues.map((i) => `--${FLAG_OF[String(i.path[0])] ?? String(i.path[0])}: ${describeIssue(i)}`);
    throw new RangeError(words.join('; '));
  }
}

function int(values: Record<string, unknown>, name: string, fallback: number, min: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const parsed = parseDecimal(String(raw), 'float64'); // Number() would take '0x10' and ''
  const v = parsed.ok ? parsed.value : NaN;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`--${name} must be an integer ≥ ${min}, got '${String(raw)}'`);
  return v;
}

/**
 * The defaults are the federation's (common/protocol/federation-model.ts DEFAULT_FEDERATION_MODEL),
 * the same the coordinator announces to deployed agents; docs/decisions.md says how each was
 * measured. What they are (on the GCD traces, one CSV per VM, 288 samples at 5 min):
 * lookback 12 and 32 hidden units overfit less than 30/64 on short series, batch 32 gives small
 * clients several steps per epoch; 40 rounds × 2 local epochs (the best round on the clients'
 * validation tails is kept, ranked by their mean loss relative to persistence: see
 * coordinator/strategy/model-selection.ts; centralised training ranks its epochs the same way).
 * 40 rounds, not 20: at 20 the last round was the best one on 4 of 9 trace sets, so FedAvg had
 * not converged; measured over 34 RMSE/MAE cells on 9 sets (NAB ec2_cpu, GCD VMs 101–150,
 * 301–350, 801–850, 1001–1050, 1101–1150, 1201–1230, 1501–1550, 1551–1600), federated vs local
 * was −1.57 % (seed 42) and −1.60 % (seed 7) at 40 rounds, −1.28 % and −1.36 % at 20, −1.53 %
 * at 60; 1 local epoch × 40 rounds was worse (−1.15 %).
 * Local-only and centralised training get the same epoch budget (rounds × epochs, best epoch
 * kept), so the comparison is at equal compute.
 * Channels are forecast independently by one shared model unless --joint.
 * The "federated" method is personalised FedAvg: after the rounds, each client fine-tunes the
 * global model on its own training part for --fine-tune epochs (default 4; 0 = none), keeping
 * whichever of global / fine-tuned is better on its own validation tail. That forecast is mixed
 * per channel with the personalised federated ridge model's (--ridge-features random features,
 * default 256, 0 = none: agent/trainer/ridge.ts, one aggregation of least-squares statistics,
 * one head per metric, each client's penalty picked per step ahead;
 * it closed the gap to centralised training on GCD VMs 401–450, see docs/ARCHITECTURE.md), then
 * with the client's own local model's, each share shrunk toward an equal mix unless its fit is
 * decisive (agent/trainer/mixture.ts, APFL-style). The shares of each test window are fitted on
 * the windows whose targets were known at its origin, a window's weight falling by e for every
 * --mix-memory newer ones (default 6), as a deployed agent refits them while targets arrive
 * (mixRecent; no forecast sees a value after its origin); --mix-memory 0 fits them once on the
 * validation tail. Raw data never leaves a client.
 * The pieces are reported too: rows "fedavg" (the global model),
 * "fine-tuned" and "ridge" (before the mixtures), JSON keys "fedavg", "fine_tuned" and "ridge"; JSON
 * "fedavg_best_round" is the round kept (0 = no round beat the untrained model) and
 * "ridge_penalties" each metric's pooled ridge penalty (the ridge model has one head per metric
 * unless --joint; {} without the ridge model).
 * Every learned method (local, federated, centralised alike) calibrates its output per client as
 * the agent does (Forecaster.calibrateOutput: predicted changes limited to the largest seen in
 * training, blended toward persistence per channel as fitted on validation), unless --no-calibration.
 * The federated method runs as a real federation session (simulate/federation.ts): the
 * coordinator's round runner and one agent participant per CSV file, over the in-memory transport
 * or, with --transport mqtt, over MQTT through the embedded broker.
 * --dp runs the federation a second time with differential privacy on every agent's updates
 * (the agent's [privacy] defaults, agent/federation/privacy.ts; the budget is not enforced, as every
 * agent must answer every round here) and reports ε and what it costs: each federated row's RMSE
 * and MAE against the run without DP (JSON "dp").
 */
const command = defineCommand({
  summary: 'federated vs local vs centralised vs persistence forecasting on CSV traces (one file per machine)',
  flags: {
    data: { type: 'string', value: 'DIR', description: 'a directory with one CSV per machine (README: simulation data format)', required: true },
    metrics: { type: 'string', value: 'A,B', description: 'comma-separated column names to forecast, e.g. cpu,mem', required: true },
    rounds: { type: 'string', value: 'N', description: 'FedAvg rounds', default: String(D.rounds) },
    clients: { type: 'string', value: 'N', description: 'use the first N CSV files', default: '50' },
    epochs: { type: 'string', value: 'N', description: 'local epochs per FedAvg round', default: String(D.localEpochs) },
    model: { type: 'string', value: 'mlp|linear|lstm', description: 'the model kind', default: D.kind },
    lookback: { type: 'string', value: 'N', description: 'past samples the model sees', default: String(D.lookback) },
    horizon: { type: 'string', value: 'N', description: 'steps ahead it forecasts', default: String(D.horizon) },
    hidden: { type: 'string', value: 'N', description: 'hidden units', default: String(D.hiddenUnits) },
    joint: { type: 'boolean', description: 'one model over all channels jointly instead of each channel from its own history' },
    'batch-size': { type: 'string', value: 'N', description: 'windows per training step', default: String(D.batchSize) },
    'learning-rate': { type: 'string', value: 'R', description: "Adam's learning rate, in (0, 1)", default: String(D.learningRate) },
    seed: { type: 'string', value: 'N', description: 'seed of weight init and shuffling', default: String(D.seed) },
    'fine-tune': { type: 'string', value: 'N', description: "epochs each client fine-tunes the global model on its own data (0: none)", default: String(D.fineTuneEpochs) },
    'ridge-features': { type: 'string', value: 'N', description: 'random features of the federated ridge model (0: none)', default: String(D.ridgeFeatures) },
    'mix-memory': { type: 'string', value: 'N', description: "windows over which a window's weight in the mixture fit falls by e (0: fit the shares once on the validation tail)", default: String(D.mixMemory) },
    'no-calibration': { type: 'boolean', description: "do not calibrate the learned methods' outputs per client" },
    backend: { type: 'string', value: BACKENDS, description: 'the TensorFlow.js backend; auto: the fastest that loads', default: 'auto' },
    plaintext: { type: 'boolean', description: 'plaintext FedAvg instead of CKKS-encrypted (the reference)' },
    transport: { type: 'string', value: 'memory|mqtt', description: 'the federation transport: in-memory, or MQTT through the embedded broker', default: 'memory' },
    json: { type: 'boolean', description: 'print one JSON object instead of tables' },
    plot: { type: 'string', value: 'FILE.svg', description: "write an SVG of one client's forecasts (checked before any work starts)" },
    dp: { type: 'boolean', description: "run the session a second time with differential privacy on every agent's updates and report the accuracy cost and ε" },
    'noise-multiplier': { type: 'string', value: 'σ', description: 'with --dp: Gaussian noise of σ × the clip bound', default: String(PRIVACY.noise_multiplier) },
    'clip-norm': { type: 'string', value: 'C', description: "with --dp: L2 bound of a FedAvg update's change", default: String(PRIVACY.clip_norm) },
    'ridge-clip-norm': { type: 'string', value: 'C', description: 'with --dp: L2 bound of the packed ridge statistics', default: String(PRIVACY.ridge_clip_norm) },
    delta: { type: 'string', value: 'δ', description: 'with --dp: δ of the reported (ε, δ)', default: String(PRIVACY.delta) },
    dropout: { type: 'string', value: 'RATE', description: "run the session a second time with federated dropout: RATE (0 < RATE ≤ 0.9) of the MLP's hidden units dropped per agent in every FedAvg round; reports the accuracy and bytes change", defaultText: 'off' },
    resample: { type: 'string', value: 'SECONDS', description: "bin irregular samples onto a SECONDS grid from each file's first timestamp (last sample in a bin wins; empty bins missing)", defaultText: 'off' },
  },
  async run({ values }) {
    // An output path that cannot be written fails now, before any data is read or model trained.
    if (values.plot !== undefined) checkOutputFile('--plot', values.plot);
    const resampleSeconds = parseResampleFlag(values.resample);
    const dpFlags = ['noise-multiplier', 'clip-norm', 'ridge-clip-norm', 'delta'].filter((k) => process.argv.includes(`--${k}`));
    if (!values.dp && dpFlags.length > 0) throw new TypeError(`--${dpFlags[0]} needs --dp`);
    const privacy = values.dp
      ? {
          ...PRIVACY,
          enabled: true,
          noise_multiplier: positive(values, 'noise-multiplier', PRIVACY.noise_multiplier),
          clip_norm: positive(values, 'clip-norm', PRIVACY.clip_norm),
          ridge_clip_norm: positive(values, 'ridge-clip-norm', PRIVACY.ridge_clip_norm),
          delta: positive(values, 'delta', PRIVACY.delta, 1),
          epsilon_budget: Infinity,
        }
      : undefined;
    const metrics = values.metrics.split(',').map((m) => m.trim()).filter(Boolean);
    const repeated = metrics.find((m, i) => metrics.indexOf(m) !== i);
    if (repeated !== undefined) throw new RangeError(`--metrics names '${repeated}' twice; each metric is one channel of the model`);
    const kind = values.model;
    if (!['mlp', 'linear', 'lstm'].includes(kind)) throw new RangeError(`--model must be mlp, linear or lstm, got '${kind}'`);
    const badMetric = metrics.find((m) => !/^[a-z][a-z0-9_]{0,63}$/.test(m));
    if (badMetric !== undefined) throw new RangeError(`--metrics: '${badMetric}' is not a metric name (1–64 of a-z, 0-9 and _, starting with a letter)`);
    const rate = values['learning-rate'] === undefined ? undefined : parseDecimal(values['learning-rate'], 'float64');
    const learningRate = rate === undefined ? D.learningRate : rate.ok ? rate.value : NaN;
    if (!(learningRate > 0 && learningRate < 1)) throw new RangeError(`--learning-rate must be in (0, 1), got '${values['learning-rate']}'`);
    const transport = values.transport;
    if (transport !== 'memory' && transport !== 'mqtt') throw new RangeError(`--transport must be memory or mqtt, got '${transport}'`);
    const model = flagParse(() => parseFederationModel({
      metrics,
      kind,
      lookback: int(values, 'lookback', D.lookback, 2),
      horizon: int(values, 'horizon', D.horizon, 1),
      hiddenUnits: int(values, 'hidden', D.hiddenUnits, 1),
      channelIndependent: !values.joint,
      rounds: int(values, 'rounds', D.rounds, 1),
      localEpochs: int(values, 'epochs', D.localEpochs, 1),
      batchSize: int(values, 'batch-size', D.batchSize, 1),
      learningRate,
      seed: int(values, 'seed', D.seed, 0),
      fineTuneEpochs: int(values, 'fine-tune', D.fineTuneEpochs, 0),
      ridgeFeatures: int(values, 'ridge-features', D.ridgeFeatures, 0),
      mixMemory: int(values, 'mix-memory', D.mixMemory, 0),
      calibrate: !values['no-calibration'],
    }));
    const clientLimit = int(values, 'clients', 50, 1);
    const dropoutRate = values.dropout === undefined ? undefined : Number(values.dropout);
    if (dropoutRate !== undefined && !(dropoutRate > 0 && dropoutRate <= 0.9)) throw new RangeError(`--dropout must be a rate in (0, 0.9], got '${values.dropout}'`);
    if (dropoutRate !== undefined && model.kind !== 'mlp') throw new RangeError(`--dropout drops hidden units of the mlp model; --model is ${model.kind}`);
    if (dropoutRate !== undefined && privacy) throw new TypeError('--dropout and --dp each run a second session against the same baseline; run them one at a time');

    // tfjs and the trainer load only when this command runs (see common/cli.ts).
    const { clientFiles, readClientCsv } = await import('../csv.js');
    const { resampleSeries } = await import('../resample.js');
    const { runSimulation, METHODS } = await import('../experiment.js');
    const { forecastSvg } = await import('../plot.js');
    const { Progress } = await import('../progress.js');
    const { goalVerdict, formatVerdict } = await import('../verdict.js');
    const { selectBackend } = await import('../../agent/trainer/backends.js');
    const { parseTrainerConfig } = await import('../../agent/trainer/config.js');
    const { specOf } = await import('../../agent/federation/engines.js');

    const dataDir = values.data;
    let files: string[];
    try {
      files = clientFiles(dataDir);
    } catch (err) {
      // The reason (ENOENT, ENOTDIR, EACCES) is in the cause; say it with the flag.
      if (isIcosflError(err, 'DATA_INVALID') && isSystemError(err.cause)) throw inputError('DATA_INVALID', dataDir, err.cause, '--data', 'name a directory with one CSV per machine');
      throw err;
    }
    const read = files.slice(0, clientLimit).map((n) => readClientCsv(join(dataDir, n), metrics));
    const emptyCells = read.reduce((a, s) => a + (s.emptyCells ?? 0), 0);
    const resampled = resampleSeconds === undefined ? undefined : read.map((s) => resampleSeries(s, resampleSeconds));
    const series = resampled ? resampled.map((r) => r.series) : read;
    const grid = resampled && { seconds: resampleSeconds!, bins: resampled.reduce((a, r) => a + r.stats.bins, 0), emptyBins: resampled.reduce((a, r) => a + r.stats.emptyBins, 0), merged: resampled.reduce((a, r) => a + r.stats.merged, 0) };
    // stdout carries the table or the JSON object; progress logs go to stderr (warn by default).
    // The progress line (below) shares stderr with the log: it steps aside for each record.
    let progress: InstanceType<typeof Progress> | undefined;
    const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', output: resolveLogOutput(resolveLogFormat(''), 2), aroundRecord: (write) => (progress ? progress.around(write) : write()) }).child({ component: 'simulate' });
    const trainerConfig = flagParse(() => parseTrainerConfig({ backend: values.backend ?? 'auto', model: model.kind, lookback: model.lookback, horizon: model.horizon, hidden_units: model.hiddenUnits, channel_independent: model.channelIndependent, batch_size: model.batchSize }));
    const { chosen } = await selectBackend(trainerConfig, specOf(model), { logger: log });
    // Encrypted FedAvg by default (the real codec and coordinator sum); --plaintext for the reference.
    const { ckksWitness, roundSampleBound } = await import('../encrypted.js');
    const { generateFederation } = await import('../../common/crypto/index.js');
    const rows = series.reduce((a, s) => a + s.timestamps.length, 0);
    const keys = values.plaintext ? undefined : await generateFederation({ federationId: 'simulate', maxRoundSamples: roundSampleBound(rows) });
    const witness = keys ? ckksWitness() : undefined;
    // The session's rounds: the ridge round (when the ridge model takes part), the FedAvg rounds, the final one; twice with --dp.
    const ridgeRound = model.ridgeFeatures > 0 && model.kind !== 'lstm' ? 1 : 0;
    progress = new Progress({ total: (ridgeRound + model.rounds + 1) * (privacy || dropoutRate !== undefined ? 2 : 1), noun: 'rounds', tty: Boolean(process.stderr.isTTY), write: (t) => process.stderr.write(t) });
    let roundsDone = 0;
    progress.update(0, 'starting the session');
    const simulate = (dp?: typeof privacy, runModel = model) =>
      runSimulation(series, {
        model: runModel,
        testFraction: 0.2,
        logger: log,
        transport,
        ...(keys ? { keys } : {}),
        ...(witness ? { wrapCodec: witness.wrap } : {}),
        ...(resampleSeconds === undefined ? {} : { resampleSeconds }),
        ...(dp ? { privacy: dp } : {}),
        onRound: (h) => progress!.update(++roundsDone, `${dp ? 'with DP: ' : runModel !== model ? 'with dropout: ' : ''}round ${h.round} (${h.phase}${h.step ? ` ${h.step}/${model.rounds}` : ''}) ${h.outcome}, ${h.phase === 'final' ? h.acks : h.participants} agents`),
      });
    const r = await simulate();
    const rDp = privacy ? await simulate(privacy) : undefined;
    const rDrop = dropoutRate !== undefined ? await simulate(undefined, { ...model, dropoutRate }) : undefined;
    progress.end();
    const encrypted = witness;
    const opts = { ...model, model: model.kind, fineTuneEpochs: model.fineTuneEpochs };
    const aggregation = encrypted ? `CKKS-encrypted FedAvg (max |encrypted − plaintext| ${encrypted.maxAbsError().toExponential(2)})` : 'plaintext FedAvg';

    // Checked before the run; should it fail now all the same, the results are printed first.
    let plotError: IcosflError | undefined;
    if (values.plot !== undefined) {
      try {
        writeFileSync(values.plot, forecastSvg(r, opts.horizon));
      } catch (cause) {
        plotError = new IcosflError('OUTPUT_UNWRITABLE', `--plot ${values.plot}: cannot write it after the run (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); the results are above`, { cause });
      }
    }
    const verdict = goalVerdict(r.scores, metrics);
    const { privacyCost, meanCost } = await import('../privacy-cost.js');
    // The rows DP changes: the federated pipeline's (local, persistence and centralised never see a noised update).
    const DP_ROWS = ['federated', 'fedavg', 'fineTuned', ...(r.scores.ridge ? (['ridge'] as const) : [])] as const;
    const dpReport = (d: NonNullable<typeof rDp>) => {
      const dpScores = d.scores as Record<(typeof DP_ROWS)[number], MethodScores>;
      const plain = r.scores as Record<(typeof DP_ROWS)[number], MethodScores>;
      const name = (m: (typeof DP_ROWS)[number]) => (m === 'fineTuned' ? 'fine_tuned' : m);
      return {
        epsilon: d.privacy!.epsilon,
        delta: d.privacy!.delta,
        rounds: d.privacy!.rounds,
        noise_multiplier: d.privacy!.noiseMultiplier,
        clip_norm: d.privacy!.clipNorm,
        ridge_clip_norm: d.privacy!.ridgeClipNorm,
        fedavg_best_round: d.fedavgBestRound,
        /** false: the DP run has no ridge piece (with DP each agent's own ridge fit stands in when no pooled penalty solves the noised statistics). */
        ridge_model: d.scores.ridge !== undefined,
        rmse: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), dpScores[m].rmse])),
        mae: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), dpScores[m].mae])),
        relative_change: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), privacyCost(plain[m], dpScores[m], metrics)])),
        mean_relative_change: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), meanCost(privacyCost(plain[m], dpScores[m], metrics))])),
      };
    };
    /** Federated dropout against the same run without it: errors, and what changes in bytes (dropout-report.ts). */
    const { dropoutBytes } = await import('../dropout-report.js');
    const dropReport = (d: NonNullable<typeof rDrop>) => {
      const dScores = d.scores as Record<(typeof DP_ROWS)[number], MethodScores>;
      const plain = r.scores as Record<(typeof DP_ROWS)[number], MethodScores>;
      const name = (m: (typeof DP_ROWS)[number]) => (m === 'fineTuned' ? 'fine_tuned' : m);
      return {
        rate: dropoutRate!,
        fedavg_best_round: d.fedavgBestRound,
        rmse: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), dScores[m].rmse])),
        mae: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), dScores[m].mae])),
        relative_change: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), privacyCost(plain[m], dScores[m], metrics)])),
        mean_relative_change: Object.fromEntries(DP_ROWS.filter((m) => m in d.scores).map((m) => [name(m), meanCost(privacyCost(plain[m], dScores[m], metrics))])),
        bytes: dropoutBytes({ ...model, dropoutRate: dropoutRate! }, r.rounds, d.rounds, keys?.coordinator.params),
      };
    };
    // JSON keys persistence/local/federated/centralized as specified, plus the federated
    // pipeline's pieces: fedavg (global model), fine_tuned and ridge (before the mixtures).
    const ROWS = [...METHODS, 'fedavg', 'fineTuned', ...(r.scores.ridge ? (['ridge'] as const) : [])];
    const scores = r.scores as Record<(typeof ROWS)[number], MethodScores>;
    const key = (m: (typeof ROWS)[number]) => (m === 'fineTuned' ? 'fine_tuned' : m);
    const pick = (k: 'rmse' | 'mae') => Object.fromEntries(ROWS.map((m) => [key(m), scores[m][k]]));
    if (values.json) {
      const out = {
        rmse: pick('rmse'),
        mae: pick('mae'),
        rmse_by_step: Object.fromEntries(ROWS.map((m) => [key(m), scores[m].rmseByStep])),
        goal: verdict,
        clients: r.clients.length,
        skipped_clients: r.skippedClients,
        csv_files: files.length,
        timestamp_gaps: r.timestampGaps,
        empty_cells: emptyCells,
        resample: grid ? { seconds: grid.seconds, bins: grid.bins, empty_bins: grid.emptyBins, merged_rows: grid.merged } : null,
        backend: chosen,
        aggregation: encrypted ? 'ckks' : 'plaintext',
        ...(encrypted ? { ckks_max_abs_error: encrypted.maxAbsError() } : {}),
        transport,
        options: model,
        rounds: r.rounds.length,
        weights: r.weights,
        fedavg_best_round: r.fedavgBestRound,
        ridge_penalties: r.ridgePenalties,
        seconds: r.seconds,
        ...(rDp ? { dp: dpReport(rDp) } : {}),
        ...(rDrop ? { dropout: dropReport(rDrop) } : {}),
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      if (plotError) throw plotError;
      return 0;
    }
    const cell = (v: number) => v.toPrecision(4).padStart(10);
    const lines: string[] = [];
    const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
    const gaps = r.timestampGaps.gaps > 0 ? `; ${count(r.timestampGaps.gaps, 'gap')} in the timestamps, ${count(r.timestampGaps.missing, 'sample')} marked missing` : '';
    const empties = emptyCells > 0 ? `; ${count(emptyCells, 'empty cell')} read as missing samples` : '';
    const gridded = grid ? `; resampled to ${grid.seconds} s bins, ${grid.emptyBins} of ${grid.bins} empty (missing), ${count(grid.merged, 'row')} merged into a bin with a later one` : '';
    const limited = files.length > series.length ? `; the first ${series.length} of ${files.length} CSV files, --clients N for more` : '';
    lines.push(`${r.clients.length} clients (${r.skippedClients.length} skipped: too few windows${gaps}${empties}${gridded}${limited}), backend ${chosen}, model ${opts.model} L=${opts.lookback} H=${opts.horizon}, ${count(opts.rounds, 'round')} × ${count(opts.localEpochs, 'local epoch')}, ${r.weights} weights, ${aggregation}`);
    lines.push('errors on each client\'s last 20 %, mean over clients, all steps ahead, original units');
    lines.push(['method'.padEnd(12), ...metrics.flatMap((m) => [`${m} RMSE`.padStart(10), `${m} MAE`.padStart(10)])].join(' '));
    for (const m of ROWS) lines.push([key(m).padEnd(12), ...metrics.flatMap((k) => [cell(scores[m].rmse[k]!), cell(scores[m].mae[k]!)])].join(' '));
    lines.push(
      `federated = FedAvg + local fine-tuning (${opts.fineTuneEpochs} epochs per client from the final global model, best of global/fine-tuned on the client's own validation tail)` +
        (r.scores.ridge ? `, mixed per channel with the personalised federated ridge model (${opts.ridgeFeatures} random features, pooled statistics from one aggregation, pooled penalties ${Object.entries(r.ridgePenalties).map(([m, l]) => `${m} ${l}`).join(', ')}, personal penalties per step; row "ridge")` : '') +
        `, then mixed per channel with the client's local model (${opts.mixMemory > 0 ? `shares refitted for each forecast on the windows whose targets were known by then, a window's weight falling by e for every ${opts.mixMemory} newer ones` : 'shares fitted on that validation tail'}, shrunk 0.6 of the way toward ½ unless the fit is decisive); fine-tuned = before the mixtures; fedavg = the global model of round ${r.fedavgBestRound} of ${opts.rounds}, the best on the clients' validation tails${r.fedavgBestRound === 0 ? ' (0: no round beat the untrained model, which forecasts persistence)' : ''}` +
        (opts.calibrate ? '; every learned method is calibrated per client (change limit from training, blend toward persistence fitted on validation)' : ''),
    );
    lines.push('');
    lines.push('RMSE per step ahead (1 … H)');
    for (const m of ROWS) {
      for (const k of metrics) lines.push(`${key(m).padEnd(12)} ${k.padEnd(8)} ${scores[m].rmseByStep[k]!.map(cell).join(' ')}`);
    }
    lines.push('', 'federated against the goal', ...formatVerdict(verdict));
    if (rDp) {
      const d = dpReport(rDp);
      const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(2)} %`.padStart(10);
      lines.push(
        '',
        `with differential privacy: ε ${d.epsilon.toFixed(3)} at δ ${d.delta} after ${d.rounds} rounds per agent (noise multiplier ${d.noise_multiplier}, clip ${d.clip_norm}, ridge clip ${d.ridge_clip_norm}; FedAvg round kept ${d.fedavg_best_round}` +
          `${r.scores.ridge && !d.ridge_model ? '; no ridge model' : ''}${rDp.ridgePenalties && Object.keys(rDp.ridgePenalties).length === 0 && d.ridge_model ? "; no pooled ridge penalty solved the noised statistics, each agent's own ridge fit stands in" : ''})`,
        'errors with DP and their change against the run without DP (+ = worse)',
        ['method'.padEnd(12), ...metrics.flatMap((m) => [`${m} RMSE`.padStart(10), 'change'.padStart(10), `${m} MAE`.padStart(10), 'change'.padStart(10)])].join(' '),
      );
      for (const [m, c] of Object.entries(d.relative_change)) lines.push([m.padEnd(12), ...metrics.flatMap((k) => [cell(d.rmse[m]![k]!), pct(c.rmse[k]!), cell(d.mae[m]![k]!), pct(c.mae[k]!)])].join(' '));
      lines.push(`mean change of the federated row's RMSE and MAE: ${pct(d.mean_relative_change.federated!).trim()}`);
    }
    if (rDrop) {
      const d = dropReport(rDrop);
      const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(2)} %`.padStart(10);
      const b = d.bytes;
      lines.push(
        '',
        `with federated dropout: ${(d.rate * 100).toFixed(0)} % of the ${model.hiddenUnits} hidden units dropped per agent and FedAvg round (${b.kept_units} kept; FedAvg round kept ${d.fedavg_best_round})`,
        'errors with dropout and their change against the run without it (+ = worse)',
        ['method'.padEnd(12), ...metrics.flatMap((m) => [`${m} RMSE`.padStart(10), 'change'.padStart(10), `${m} MAE`.padStart(10), 'change'.padStart(10)])].join(' '),
      );
      for (const [m, c] of Object.entries(d.relative_change)) lines.push([m.padEnd(12), ...metrics.flatMap((k) => [cell(d.rmse[m]![k]!), pct(c.rmse[k]!), cell(d.mae[m]![k]!), pct(c.mae[k]!)])].join(' '));
      lines.push(`mean change of the federated row's RMSE and MAE: ${pct(d.mean_relative_change.federated!).trim()}`);
      lines.push(
        `bytes per FedAvg update: ${b.update_bytes} without dropout, ${b.update_bytes_dropout} with (${(b.zeroed_fraction * 100).toFixed(1)} % of the ${b.parameters} values are zeros); ` +
          `packing only the kept units would take ${b.kept_only_bytes} (the coordinator could not add updates of different layouts: see docs/decisions.md)`,
      );
    }
    if (values.plot !== undefined && !plotError) lines.push(`plot: ${values.plot} (client ${r.plot.client})`);
    process.stdout.write(lines.join('\n') + '\n');
    if (plotError) throw plotError;
    return 0;
  },
});
export default command;
