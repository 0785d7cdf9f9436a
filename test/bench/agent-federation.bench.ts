import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { controlRequest, controlSocketPath } from '../../agent/daemon/control-client.js';
import { RING_FILE } from '../../agent/sampler/open-ring.js';
import { generateFederation, writeFederation } from '../../common/crypto/index.js';
import { MetricRing } from '../../native/ring.js';
import { DIST, tempDir } from '../helpers/paths.js';

/**
 * agent-federation: does the 1 s sampling cadence hold while the daemon takes part in encrypted
 * federation rounds? A coordinator (`serve`, embedded broker, sessions back to back: local model,
 * ridge round, 10 FedAvg rounds, final round with fine-tuning, then the next session a second
 * later) and two agent daemons sampling this machine every second over rings pre-filled with
 * 3000 synthetic samples. First BENCH_SECONDS (default 30) with federation off (the baseline, in
 * the same run), then BENCH_SECONDS with it on; the figures are agent 0's sampler jitter (worker
 * wake-up delay) and store lag (sample time → in the ring on the main thread), p50/p99/max, and
 * the rounds the coordinator completed meanwhile.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const METRICS = ['cpu_busy_pct', 'mem_used_pct'];
const PREFILL = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (m: string) => process.stderr.write(`[agent-federation] ${m}\n`);

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface Sampling {
  samples_stored: number;
  skipped_slots: number;
  jitter_ms: { n: number; p50: number; p99: number; max: number };
  store_lag_ms: { p50: number; p99: number; max: number };
}

function prefill(stateDir: string, seed: number): void {
  mkdirSync(stateDir, { recursive: true });
  const ring = MetricRing.open({ path: join(stateDir, RING_FILE), capacity: 86_400, channels: METRICS.length, schemaTag: METRICS.join(',') });
  const t = new Float64Array(PREFILL);
  const v = new Float32Array(PREFILL * METRICS.length);
  const start = Date.now() - (PREFILL + 5) * 1000;
  for (let i = 0; i < PREFILL; i++) {
    t[i] = start + i * 1000;
    v[i * 2] = 50 + 30 * Math.sin((i + seed * 17) / 60) + 5 * Math.sin(i / 7);
    v[i * 2 + 1] = 40 + 10 * Math.sin((i + seed * 31) / 300);
  }
  ring.pushBatch(t, v);
  ring.close();
}

function start(args: string[]): ChildProcess {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && k !== 'NOTIFY_SOCKET' && k !== 'WATCHDOG_USEC'));
  return spawn(process.execPath, args, { env: { ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function waitFor(socket: string, seconds = 60): Promise<void> {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    try {
      await controlRequest(socket, { cmd: 'ping' }, 1000);
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(200);
    }
  }
}

async function main(): Promise<void> {
  const { dir, cleanup } = tempDir('icosfl-bench-federation-');
  const children: ChildProcess[] = [];
  const stop = async (c: ChildProcess) => {
    if (c.exitCode !== null) return;
    c.kill('SIGTERM');
    await new Promise((r) => c.once('exit', r));
  };
  try {
    writeFederation(join(dir, 'keys'), await generateFederation({ federationId: 'bench' }));
    const port = await freePort();
    const agentConfig = (i: number, federation: boolean) => {
      const path = join(dir, `agent-${i}-${federation ? 'fed' : 'base'}.toml`);
      writeFileSync(
        path,
        `[agent]\nstate_dir = "${join(dir, `agent-${i}`)}"\nlog_level = "warn"\n\n[sampler]\ninterval_ms = 1000\nmetrics = ${JSON.stringify(METRICS)}\n\n` +
          `[trainer]\nenabled = false\nbackend = "native"\n\n` +
          `[federation]\nenabled = ${federation}\nbroker = "mqtt://127.0.0.1:${port}"\nkeys = "${join(dir, 'keys', 'agent.json')}"\nagent_id = "agent-${i}"\n`,
      );
      return path;
    };
    for (const i of [0, 1]) prefill(join(dir, `agent-${i}`), i);
    const socket = controlSocketPath(join(dir, 'agent-0', 'run'));

    // Baseline: the same daemon, sampling only.
    const base = start([join(DIST, 'agent', 'cli.js'), 'run', '--config', agentConfig(0, false)]);
    children.push(base);
    await waitFor(socket);
    progress(`baseline: agent 0 sampling without federation for ${SECONDS} s`);
    await sleep(SECONDS * 1000);
    const idle = ((await controlRequest(socket, { cmd: 'status' }, 30_000)) as { sampling: Sampling }).sampling;
    await stop(base);

    writeFileSync(
      join(dir, 'coordinator.toml'),
      `[coordinator]\nstate_dir = "${join(dir, 'coordinator')}"\nkeys = "${join(dir, 'keys', 'coordinator.json')}"\nlog_level = "warn"\n\n` +
        `[broker]\nurl = "embedded"\nembedded_port = ${port}\n\n` +
        `[federation]\nmin_agents = 2\nround_interval_s = 0.2\nsession_interval_s = 1\nsessions = 0\nround_timeout_s = 60\nack_timeout_s = 30\n\n` +
        `[model]\nmetrics = ${JSON.stringify(METRICS)}\nrounds = 10\n`,
    );
    const coordinator = start([join(DIST, 'coordinator', 'cli.js'), 'serve', '--config', join(dir, 'coordinator.toml')]);
    children.push(coordinator);
    for (const i of [0, 1]) children.push(start([join(DIST, 'agent', 'cli.js'), 'run', '--config', agentConfig(i, true)]));
    await waitFor(socket);
    const coordSocket = join(dir, 'coordinator', 'run', 'coordinator.sock');
    await waitFor(coordSocket);
    const roundsBefore = ((await controlRequest(coordSocket, { cmd: 'rounds' }, 10_000)) as { total: number }).total;
    progress(`federation: coordinator + 2 agents, sessions back to back, for ${SECONDS} s`);
    await sleep(SECONDS * 1000);
    const st = (await controlRequest(socket, { cmd: 'status' }, 30_000)) as { sampling: Sampling; federation: { model: { session: number } | null } };
    const rounds = ((await controlRequest(coordSocket, { cmd: 'rounds' }, 10_000)) as { total: number }).total - roundsBefore;
    const fed = st.sampling;
    const r2 = (x: number) => Number(x.toFixed(2));
    process.stdout.write(
      JSON.stringify({
        bench: 'agent-federation',
        seconds: SECONDS,
        rounds_completed: rounds,
        sessions_installed: st.federation.model?.session ?? 0,
        baseline: { samples: idle.jitter_ms.n, skipped_slots: idle.skipped_slots, jitter_ms_p50: r2(idle.jitter_ms.p50), jitter_ms_p99: r2(idle.jitter_ms.p99), jitter_ms_max: r2(idle.jitter_ms.max), store_lag_ms_p99: r2(idle.store_lag_ms.p99), store_lag_ms_max: r2(idle.store_lag_ms.max) },
        federated: { samples: fed.jitter_ms.n, skipped_slots: fed.skipped_slots, jitter_ms_p50: r2(fed.jitter_ms.p50), jitter_ms_p99: r2(fed.jitter_ms.p99), jitter_ms_max: r2(fed.jitter_ms.max), store_lag_ms_p99: r2(fed.store_lag_ms.p99), store_lag_ms_max: r2(fed.store_lag_ms.max) },
        jitter_p99_vs_baseline: r2(fed.jitter_ms.p99 / Math.max(idle.jitter_ms.p99, 0.001)),
      }) + '\n',
    );
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`agent-federation failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
