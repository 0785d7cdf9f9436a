import type { Command } from '../../common/cli.js';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import { CONFIG_FLAGS_USAGE, parseConfigFlags } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';
import { controlRequest, findControlSocket } from '../daemon/control-client.js';
import type { Forecast } from '../trainer/job.js';

export function formatForecast(f: Forecast): string {
  const names = Object.keys(f.forecast);
  const width = Math.max(6, ...names.map((n) => n.length));
  const head = [''.padEnd(width), ...Array.from({ length: f.horizon }, (_, h) => `+${h + 1}`.padStart(11))].join(' ');
  const rows = names.map((n) => [n.padEnd(width), ...f.forecast[n]!.map((v) => v.toPrecision(5).padStart(11))].join(' '));
  const origin = `model version ${f.version} (federated round ${f.round}, saved ${f.savedAt || '-'})${f.backend ? `, backend ${f.backend}` : ''}`;
  return `${origin}\nforecast, steps ahead in sampling intervals:\n${head}\n${rows.join('\n')}\n`;
}

/**
 * Without a daemon the saved model and the ring are read directly (the ring lock is free then);
 * one forward pass runs on the plain JS backend, which needs no calibration.
 */
async function predictOffline(stateDir: string, metrics: string[], capacity: number, horizon: number | undefined): Promise<Forecast> {
  const { loadModel } = await import('../trainer/persist.js');
  const { Forecaster } = await import('../trainer/forecaster.js');
  const { MetricRing } = await import('../../native/ring.js');
  const { join } = await import('node:path');
  const { RING_FILE } = await import('../sampler/open-ring.js');
  const saved = loadModel(stateDir);
  if (!saved) throw new IcosflError('DAEMON_NOT_RUNNING', `no daemon is running and no model is saved in ${stateDir} yet`);
  const h = horizon ?? saved.spec.horizon;
  if (h > saved.spec.horizon) throw new RangeError(`--horizon must be at most the model's horizon ${saved.spec.horizon}, got ${h}`);
  const ring = MetricRing.open({ path: join(stateDir, RING_FILE), capacity, channels: metrics.length, schemaTag: metrics.join(',') });
  const f = new Forecaster(saved.spec, { seed: 0, learningRate: 0.001, scaler: saved.scaler });
  try {
    f.setWeights(saved.weights);
    const { values } = ring.latest(saved.spec.lookback);
    if (values.length !== saved.spec.lookback * saved.spec.channels || !values.every(Number.isFinite)) {
      throw new IcosflError('RING_NOT_ENOUGH_DATA', `the ring does not hold ${saved.spec.lookback} complete samples yet`);
    }
    const pred = f.predict(values, 1);
    const forecast: Record<string, number[]> = {};
    saved.channelNames.forEach((name, c) => {
      forecast[name] = Array.from({ length: h }, (_, k) => pred[k * saved.spec.channels + c]!);
    });
    return { version: saved.version, round: saved.round, savedAt: saved.savedAt, backend: undefined, horizon: h, forecast };
  } finally {
    f.dispose();
    ring.close();
  }
}

const command: Command = {
  summary: 'print the next values of every metric with the model version (asks the daemon; else reads model + ring)',
  usage: `predict ${CONFIG_FLAGS_USAGE} [--horizon N] [--socket PATH] [--json]`,
  async run(argv) {
    const { load, values } = parseConfigFlags(argv, { horizon: { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' } });
    let horizon: number | undefined;
    if (values.horizon !== undefined) {
      horizon = Number(values.horizon);
      if (!Number.isInteger(horizon) || horizon < 1) throw new RangeError(`--horizon must be a positive integer, got '${String(values.horizon)}'`);
    }
    const config = loadAgentConfig(load);
    // The configured runtime directory's socket, else the systemd unit's (/run/icosfl/agent.sock).
    const socket = typeof values.socket === 'string' ? values.socket : findControlSocket(config.agent.runtime_dir);
    let result: Forecast;
    try {
      result = (await controlRequest(socket, { cmd: 'predict', ...(horizon ? { horizon } : {}) })) as Forecast;
    } catch (err) {
      // The only argument the daemon can refuse is the horizon (beyond its model's): a bad flag.
      if (err instanceof RangeError) throw new RangeError(`--horizon ${String(horizon)} is not accepted: ${err.message}`);
      // Offline only when nothing runs there: a --socket that names no socket is the user's to fix.
      if (!isIcosflError(err, 'DAEMON_NOT_RUNNING') || err.details?.notASocket) throw err;
      result = await predictOffline(config.agent.state_dir, config.sampler.metrics, config.sampler.ring_capacity, horizon);
    }
    process.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatForecast(result));
    return 0;
  },
};
export default command;
