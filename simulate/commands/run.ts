import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../../common/cli.js';
import { ZodError } from 'zod';
import { describeIssue } from '../../common/config/problems.js';
import { isIcosflError } from '../../common/errors.js';
import { inputError, isSystemError, outputError } from '../../common/system-errors.js';
import type { MethodScores } from '../experiment.js';
import { DEFAULT_FEDERATION_MODEL, parseFederationModel } from '../../common/protocol/federation-model.js';
import pino from 'pino';

const D = DEFAULT_FEDERATION_MODEL;
const USAGE =
  `run --data DIR --metrics cpu,mem [--rounds ${D.rounds}] [--clients 50] [--epochs ${D.localEpochs}] [--model mlp|linear|lstm] ` +
  `[--lookback ${D.lookback}] [--horizon ${D.horizon}] [--hidden ${D.hiddenUnits}] [--joint] [--batch-size ${D.batchSize}] [--learning-rate ${D.learningRate}] [--seed ${D.seed}] ` +
  `[--fine-tune ${D.fineTuneEpochs}] [--ridge-features ${D.ridgeFeatures}] [--mix-memory ${D.mixMemory}] [--no-calibration] [--backend auto|native|wasm|cpu|webgpu|tfjs-node|tfjs-node-gpu] ` +
  '[--plaintext] [--transport memory|mqtt] [--json] [--plot out.svg]';

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
  const v = Number(raw);
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
 */
const command: Command = {
  summary: 'federated vs local vs centralised vs persistence forecasting on CSV traces (one file per machine)',
  usage: USAGE,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        data: { type: 'string' },
        metrics: { type: 'string' },
        rounds: { type: 'string' },
        clients: { type: 'string' },
        epochs: { type: 'string' },
        model: { type: 'string' },
        lookback: { type: 'string' },
        horizon: { type: 'string' },
        hidden: { type: 'string' },
        'batch-size': { type: 'string' },
        'learning-rate': { type: 'string' },
        seed: { type: 'string' },
        backend: { type: 'string' },
        json: { type: 'boolean' },
        joint: { type: 'boolean' },
        plaintext: { type: 'boolean' },
        'fine-tune': { type: 'string' },
        'ridge-features': { type: 'string' },
        'mix-memory': { type: 'string' },
        'no-calibration': { type: 'boolean' },
        transport: { type: 'string' },
        plot: { type: 'string' },
      },
    });
    if (!values.data) throw new TypeError('--data DIR is required (a directory with one CSV per machine)');
    if (!values.metrics) throw new TypeError('--metrics is required: comma-separated column names, e.g. cpu,mem');
    const metrics = values.metrics.split(',').map((m) => m.trim()).filter(Boolean);
    const repeated = metrics.find((m, i) => metrics.indexOf(m) !== i);
    if (repeated !== undefined) throw new RangeError(`--metrics names '${repeated}' twice; each metric is one channel of the model`);
    const kind = values.model ?? D.kind;
    if (!['mlp', 'linear', 'lstm'].includes(kind)) throw new RangeError(`--model must be mlp, linear or lstm, got '${kind}'`);
    const badMetric = metrics.find((m) => !/^[a-z][a-z0-9_]{0,63}$/.test(m));
    if (badMetric !== undefined) throw new RangeError(`--metrics: '${badMetric}' is not a metric name (1–64 of a-z, 0-9 and _, starting with a letter)`);
    const learningRate = values['learning-rate'] === undefined ? D.learningRate : Number(values['learning-rate']);
    if (!(learningRate > 0 && learningRate < 1)) throw new RangeError(`--learning-rate must be in (0, 1), got '${values['learning-rate']}'`);
    const transport = values.transport ?? 'memory';
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

    // tfjs and the trainer load only when this command runs (see common/cli.ts).
    const { clientFiles, readClientCsv } = await import('../csv.js');
    const { runSimulation, METHODS } = await import('../experiment.js');
    const { forecastSvg } = await import('../plot.js');
    const { goalVerdict, formatVerdict } = await import('../verdict.js');
    const { selectBackend } = await import('../../agent/trainer/backends.js');
    const { parseTrainerConfig } = await import('../../agent/trainer/config.js');
    const { specOf } = await import('../../agent/federation/engines.js');

    // An output path that cannot be written fails now, not after the run (which would be lost).
    const plot = values.plot;
    const writePlot = (text: string) => {
      try {
        writeFileSync(plot!, text, { flag: 'w' });
      } catch (cause) {
        throw outputError(plot!, cause, '--plot');
      }
    };
    if (plot) writePlot('');
    const dataDir = values.data;
    let files: string[];
    try {
      files = clientFiles(dataDir);
    } catch (err) {
      // The reason (ENOENT, ENOTDIR, EACCES) is in the cause; say it with the flag.
      if (isIcosflError(err, 'DATA_INVALID') && isSystemError(err.cause)) throw inputError('DATA_INVALID', dataDir, err.cause, '--data', 'name a directory with one CSV per machine');
      throw err;
    }
    const series = files.slice(0, clientLimit).map((n) => readClientCsv(join(dataDir, n), metrics));
    // stdout carries the table or the JSON object; progress logs go to stderr (warn by default).
    const log = pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { component: 'simulate' } }, pino.destination(2));
    const trainerConfig = flagParse(() => parseTrainerConfig({ backend: values.backend ?? 'auto', model: model.kind, lookback: model.lookback, horizon: model.horizon, hidden_units: model.hiddenUnits, channel_independent: model.channelIndependent, batch_size: model.batchSize }));
    const { chosen } = await selectBackend(trainerConfig, specOf(model), { logger: log });
    // Encrypted FedAvg by default (the real codec and coordinator sum); --plaintext for the reference.
    const { ckksWitness, roundSampleBound } = await import('../encrypted.js');
    const { generateFederation } = await import('../../common/crypto/index.js');
    const rows = series.reduce((a, s) => a + s.timestamps.length, 0);
    const keys = values.plaintext ? undefined : await generateFederation({ federationId: 'simulate', maxRoundSamples: roundSampleBound(rows) });
    const witness = keys ? ckksWitness() : undefined;
    const r = await runSimulation(series, {
      model,
      testFraction: 0.2,
      logger: log,
      transport,
      ...(keys ? { keys } : {}),
      ...(witness ? { wrapCodec: witness.wrap } : {}),
      onRound: (h) => process.stderr.isTTY && process.stderr.write(`\rround ${h.round} (${h.phase}${h.step ? ` ${h.step}/${model.rounds}` : ''}) ${h.outcome}, ${h.participants} agents   `),
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    const encrypted = witness;
    const opts = { ...model, model: model.kind, fineTuneEpochs: model.fineTuneEpochs };
    const aggregation = encrypted ? `CKKS-encrypted FedAvg (max |encrypted − plaintext| ${encrypted.maxAbsError().toExponential(2)})` : 'plaintext FedAvg';

    if (plot) writePlot(forecastSvg(r, opts.horizon));
    const verdict = goalVerdict(r.scores, metrics);
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
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      return 0;
    }
    const cell = (v: number) => v.toPrecision(4).padStart(10);
    const lines: string[] = [];
    const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
    const gaps = r.timestampGaps.gaps > 0 ? `; ${count(r.timestampGaps.gaps, 'gap')} in the timestamps, ${count(r.timestampGaps.missing, 'sample')} marked missing` : '';
    const limited = files.length > series.length ? `; the first ${series.length} of ${files.length} CSV files, --clients N for more` : '';
    lines.push(`${r.clients.length} clients (${r.skippedClients.length} skipped: too short${gaps}${limited}), backend ${chosen}, model ${opts.model} L=${opts.lookback} H=${opts.horizon}, ${count(opts.rounds, 'round')} × ${count(opts.localEpochs, 'local epoch')}, ${r.weights} weights, ${aggregation}`);
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
    if (values.plot) lines.push(`plot: ${values.plot} (client ${r.plot.client})`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
export default command;
