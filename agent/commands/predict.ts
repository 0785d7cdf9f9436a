import { defineCommand } from '../../common/cli.js';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import { CONFIG_FLAGS, JSON_FLAG, loadOptionsOf, SOCKET_FLAG } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';
import { controlRequest, findControlSocket } from '../daemon/control-client.js';
import type { Forecast } from '../trainer/job.js';
import { METRICS } from '../collectors/index.js';
import { formatValue } from '../sampler/format-ring.js';
import { recentSamples, type RecentSamples } from '../sampler/recent-samples.js';
import { checkOutputFile, writeOutputFile } from '../../common/output-file.js';
import { forecastPlotSvg } from './forecast-plot.js';

/** Samples of history `--plot` draws before the forecast: six times the horizon, so the forecast keeps a sixth of the width. */
const plotHistory = (horizon: number) => Math.max(24, 6 * horizon);

/**
 * The forecast as a table in each metric's unit, formatted as `sample` formats the ring
 * (format-ring.ts formatValue), then how many values were clamped into their metric's domain.
 */
export function formatForecast(f: Forecast): string {
  const names = Object.keys(f.forecast);
  const header = ['metric', ...Array.from({ length: f.horizon }, (_, h) => `+${h + 1}`)];
  const rows = names.map((n) => [n, ...f.forecast[n]!.map((v) => formatValue(v, METRICS[n]?.unit ?? ''))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  const origin = `model version ${f.version} (federated round ${f.round}, saved ${f.savedAt || '-'})${f.backend ? `, backend ${f.backend}` : ''}`;
  // An older daemon's answer has no count.
  const clamped = Object.entries(f.clamped ?? {});
  const total = clamped.reduce((a, [, n]) => a + n, 0);
  const note = total === 0
    ? "clamped into the metric's domain: none"
    : `clamped into the metric's domain: ${total} of ${names.length * f.horizon} values (${clamped.map(([m, n]) => `${m} ${n}`).join(', ')})`;
  return `${origin}\nforecast, steps ahead in sampling intervals:\n${line(header)}\n${rows.map(line).join('\n')}\n${note}\n`;
}

/**
 * Without a daemon the saved model and the ring are read directly (the ring lock is free then);
 * one forward pass runs on the plain JS backend, which needs no calibration.
 */
async function predictOffline(stateDir: string, metrics: string[], capacity: number, intervalMs: number, horizon: number | undefined): Promise<{ forecast: Forecast; recent: RecentSamples }> {
  const { loadModel } = await import('../trainer/persist.js');
  const { Forecaster } = await import('../trainer/forecaster.js');
  const { clampForecast, clampedWithin } = await import('../trainer/forecast-domain.js');
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
    const clamped = clampedWithin(clampForecast(pred, saved.channelNames), h);
    const forecast: Record<string, number[]> = {};
    saved.channelNames.forEach((name, c) => {
      forecast[name] = Array.from({ length: h }, (_, k) => pred[k * saved.spec.channels + c]!);
    });
    const recent = recentSamples(ring, metrics, intervalMs, plotHistory(h));
    return { forecast: { version: saved.version, round: saved.round, savedAt: saved.savedAt, backend: undefined, horizon: h, forecast, clamped }, recent };
  } finally {
    f.dispose();
    ring.close();
  }
}

/** The picture `--plot` writes: each forecast metric with its unit, its recent samples and its forecast. */
export function plotOf(f: Forecast, recent: RecentSamples): string {
  return forecastPlotSvg({
    title: `icosfl-agent predict: model version ${f.version} (federated round ${f.round}), ${f.horizon} steps ahead`,
    intervalMs: recent.intervalMs,
    series: Object.entries(f.forecast).map(([metric, forecast]) => ({
      metric,
      unit: METRICS[metric]?.unit ?? '',
      historyAt: recent.timestamps,
      history: (recent.values[metric] ?? recent.timestamps.map(() => null)).map((v) => v ?? NaN),
      forecast,
    })),
  });
}

const command = defineCommand({
  summary: 'print the next values of every metric with the model version (asks the daemon; else reads model + ring)',
  flags: {
    ...CONFIG_FLAGS,
    horizon: { type: 'string', value: 'N', description: 'steps ahead to print, at most the model\'s horizon', defaultText: "the model's horizon" },
    plot: { type: 'string', value: 'FILE.svg', description: 'also draw the recent samples (six times the horizon) and the forecast of each metric, with units, into an SVG (the path is checked first)' },
    ...SOCKET_FLAG,
    ...JSON_FLAG,
  },
  async run({ values }) {
    let horizon: number | undefined;
    if (values.horizon !== undefined) {
      horizon = Number(values.horizon);
      if (!Number.isInteger(horizon) || horizon < 1) throw new RangeError(`--horizon must be a positive integer, got '${String(values.horizon)}'`);
    }
    if (values.plot !== undefined) checkOutputFile('--plot', values.plot);
    const config = loadAgentConfig(loadOptionsOf(values));
    // The configured runtime directory's socket, else the systemd unit's (/run/icosfl/agent.sock).
    const socket = typeof values.socket === 'string' ? values.socket : findControlSocket(config.agent.runtime_dir);
    let result: Forecast;
    let recent: RecentSamples | undefined;
    try {
      result = (await controlRequest(socket, { cmd: 'predict', ...(horizon ? { horizon } : {}) })) as Forecast;
      if (values.plot !== undefined) recent = (await controlRequest(socket, { cmd: 'recent', samples: plotHistory(result.horizon) })) as RecentSamples;
    } catch (err) {
      // The only argument the daemon can refuse is the horizon (beyond its model's): a bad flag.
      if (err instanceof RangeError) throw new RangeError(`--horizon ${String(horizon)} is not accepted: ${err.message}`);
      // Offline only when nothing runs there: a --socket that names no socket is the user's to fix.
      if (!isIcosflError(err, 'DAEMON_NOT_RUNNING') || err.details?.notASocket) throw err;
      ({ forecast: result, recent } = await predictOffline(config.agent.state_dir, config.sampler.metrics, config.sampler.ring_capacity, config.sampler.interval_ms, horizon));
    }
    if (values.plot !== undefined) {
      writeOutputFile('--plot', values.plot, plotOf(result, recent!));
      process.stderr.write(`plot: ${values.plot} (${Object.keys(result.forecast).length} metrics, the last ${recent!.timestamps.length} samples and ${result.horizon} steps ahead)\n`);
    }
    process.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatForecast(result));
    return 0;
  },
});
export default command;
