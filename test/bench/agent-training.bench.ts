import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest, controlSocketPath } from '../../agent/daemon/control-client.js';
import { RING_FILE } from '../../agent/sampler/open-ring.js';
import { MetricRing } from '../../native/ring.js';
import { DIST, tempDir } from '../helpers/paths.js';

/**
 * agent-training: does the 1 s cadence hold while the daemon trains? The real daemon runs with
 * the training job on (WASM backend unless BENCH_BACKEND, MLP, rounds back to back) over a ring pre-filled with 3000
 * synthetic samples, for BENCH_SECONDS (default 30). Two figures from the daemon's status:
 * - jitter: the sampler worker's wake-up delay (what the stored timestamps suffer);
 * - store lag: sample time → pushed into the ring on the main thread, i.e. how long training
 *   blocked the main thread's event loop. A sampler timer on the main thread would have been late
 *   by that much, so store_lag / jitter is the worker's gain, measured in the same process.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const METRICS = ['cpu_busy_pct', 'mem_used_pct', 'load1'];
const PREFILL = 3000;
/** BENCH_BACKEND: wasm (default; trains on the main thread in slices) or native (a worker thread). */
const BACKEND = process.env.BENCH_BACKEND ?? 'wasm';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Status {
  sampling: { samples_stored: number; skipped_slots: number; jitter_ms: { n: number; p50: number; p99: number; max: number }; store_lag_ms: { p50: number; p99: number; max: number } };
  trainer: { running?: boolean; state?: string; backend?: string; version?: number; lastRound?: { seconds: number } | null; lastError?: string | null };
}

async function main(): Promise<void> {
  const { dir, cleanup } = tempDir('icosfl-bench-training-');
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  // Pre-filled ring, so training starts at once instead of after an hour of 1 s samples.
  const ring = MetricRing.open({ path: join(stateDir, RING_FILE), capacity: 86_400, channels: METRICS.length, schemaTag: METRICS.join(',') });
  const t = new Float64Array(PREFILL);
  const v = new Float32Array(PREFILL * METRICS.length);
  const start = Date.now() - PREFILL * 1000;
  for (let i = 0; i < PREFILL; i++) {
    t[i] = start + i * 1000;
    v[i * 3] = 50 + 30 * Math.sin(i / 60) + 5 * Math.sin(i / 7);
    v[i * 3 + 1] = 40 + 10 * Math.sin(i / 300);
    v[i * 3 + 2] = 1 + Math.abs(Math.sin(i / 120));
  }
  ring.pushBatch(t, v);
  ring.close();

  const config = join(dir, 'agent.toml');
  writeFileSync(
    config,
    `[agent]\nstate_dir = "${stateDir}"\nlog_level = "warn"\n\n[sampler]\ninterval_ms = 1000\nmetrics = ${JSON.stringify(METRICS)}\n\n` +
      `[trainer]\nenabled = true\nbackend = "${BACKEND}"\nmodel = "mlp"\nmin_samples = 500\nepochs = 20\ntrain_interval_s = 1\n`,
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && k !== 'NOTIFY_SOCKET' && k !== 'WATCHDOG_USEC'));
  const child = spawn(process.execPath, [join(DIST, 'agent', 'cli.js'), 'run', '--config', config], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const socket = controlSocketPath(join(stateDir, 'run'));
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        await controlRequest(socket, { cmd: 'ping' }, 1000);
        break;
      } catch (err) {
        if (Date.now() > until) throw err;
        await sleep(200);
      }
    }
    process.stderr.write(`agent-training: daemon pid ${child.pid} up; training with 1 s sampling for ${SECONDS} s\n`);
    await sleep(SECONDS * 1000);
    const st = (await controlRequest(socket, { cmd: 'status' }, 60_000)) as Status;
    process.stderr.write(`  trainer: ${JSON.stringify({ state: st.trainer.state, backend: st.trainer.backend, version: st.trainer.version, lastRound: st.trainer.lastRound, lastError: st.trainer.lastError })}\n`);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const round = (x: number) => Number(x.toFixed(2));
    const j = st.sampling.jitter_ms;
    const lag = st.sampling.store_lag_ms;
    process.stdout.write(
      JSON.stringify({
        bench: 'agent-training',
        seconds: SECONDS,
        samples: j.n,
        skipped_slots: st.sampling.skipped_slots,
        trainer_rounds_saved: st.trainer.version ?? 0,
        jitter_ms_p50: round(j.p50),
        jitter_ms_p99: round(j.p99),
        jitter_ms_max: round(j.max),
        store_lag_ms_p50: round(lag.p50),
        store_lag_ms_p99: round(lag.p99),
        store_lag_ms_max: round(lag.max),
        main_thread_lag_over_worker_jitter_p99: round(lag.p99 / Math.max(j.p99, 0.001)),
      }) + '\n',
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`agent-training failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
