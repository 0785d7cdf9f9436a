import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Forecast } from '../../../agent/trainer/job.js';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, runCli, sleep, writeConfig } from './harness.js';

/**
 * Forecasts users see stay inside each metric's domain. The daemon replays a trace whose
 * received bytes per second fall steadily to 0 and whose CPU climbs steadily to 100 %, so a
 * model trained on it (the real training job) forecasts below 0 B/s and above 100 % for the
 * next samples: `predict` shows the bounds, says how many values were clamped, and
 * /metrics counts them in icosfl_forecast_clamped_total.
 */
const { dir, cleanup } = tempDir('icosfl-forecast-clamp-');
const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  cleanup();
});

const ROWS = 400;
const METRICS = ['net_rx_bytes_per_s', 'cpu_busy_pct'];

test('predict and the gauges: clamped at 0 B/s and 100 %, and counted', async () => {
  const trace = join(dir, 'trace.csv');
  const rows = Array.from({ length: ROWS }, (_, i) => `${i * 300},${(ROWS - 1 - i) * 100},${((100 * i) / (ROWS - 1)).toFixed(4)}`);
  writeFileSync(trace, `timestamp,${METRICS.join(',')}\n${rows.join('\n')}\n`);
  const config = writeConfig(
    dir,
    `[sampler]\ninterval_ms = 3600000\nmetrics = ${JSON.stringify(METRICS)}\nreplay_file = "${trace}"\nreplay_history = 1\n\n[prometheus]\nenabled = true\nport = 0\n`,
    'agent.toml',
    'enabled = true\nmodel = "linear"\nbackend = "cpu"\nlookback = 4\nhorizon = 3\nmin_samples = 100\nepochs = 40\nbatch_size = 64\nlearning_rate = 0.01\ntrain_interval_s = 3600\nforecast_interval_s = 0.5',
  );
  const d = DaemonProcess.spawn(['run', '--config', config]);
  daemons.push(d);
  await d.waitForLog('ready', 15_000);
  await d.waitForLog('training job started', 30_000);

  let r = await runCli(['predict', '--config', config, '--json']);
  for (let i = 0; i < 150 && r.code !== 0 && /RING_NOT_ENOUGH_DATA|TRAINER_NOT_RUNNING/.test(r.stderr); i++) {
    await sleep(200);
    r = await runCli(['predict', '--config', config, '--json']);
  }
  assert.is(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout) as Forecast;
  assert.equal(Object.keys(f.forecast), METRICS);
  assert.ok(f.forecast.net_rx_bytes_per_s!.every((v) => v >= 0), JSON.stringify(f));
  assert.ok(f.forecast.cpu_busy_pct!.every((v) => v >= 0 && v <= 100), JSON.stringify(f));
  // The trend continues past the bounds at every step ahead, so every value was clamped to one.
  assert.equal(f.clamped, { net_rx_bytes_per_s: 3, cpu_busy_pct: 3 }, JSON.stringify(f));
  assert.equal(f.forecast.net_rx_bytes_per_s, [0, 0, 0]);
  assert.equal(f.forecast.cpu_busy_pct, [100, 100, 100]);

  const text = await runCli(['predict', '--config', config, '--horizon', '2']);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /^net_rx_bytes_per_s +0 B\/s +0 B\/s$/m);
  assert.match(text.stdout, /^cpu_busy_pct +100\.0 % +100\.0 %$/m);
  assert.match(text.stdout, /^clamped into the metric's domain: 4 of 4 values \(net_rx_bytes_per_s 2, cpu_busy_pct 2\)$/m);

  const st = JSON.parse((await runCli(['status', '--config', config, '--json'])).stdout) as { prometheus: { url: string } };
  await sleep(1200); // two forecast refreshes
  const metrics = await (await fetch(st.prometheus.url)).text();
  const count = (metric: string) => Number(metrics.match(new RegExp(`^icosfl_forecast_clamped_total\\{metric="${metric}"\\} (\\d+)$`, 'm'))?.[1]);
  // Each refresh clamps the 3 steps of each metric; the predict answers above count too.
  assert.ok(count('net_rx_bytes_per_s') >= 3 + 2 + 3, metrics);
  assert.ok(count('cpu_busy_pct') >= 3 + 2 + 3, metrics);
  for (const m of metrics.matchAll(/^icosfl_forecast\{metric="net_rx_bytes_per_s",steps_ahead="\d"\} (\S+)$/gm)) assert.is(Number(m[1]), 0);

  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0, d.stderr);
});

test.run();
