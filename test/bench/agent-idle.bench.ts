import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest, controlSocketPath } from '../../agent/daemon/control-client.js';
import { DIST, tempDir } from '../helpers/paths.js';

/**
 * agent-idle: the real daemon (`node dist/agent/cli.js run`, default metrics, 1 s sampling, no
 * training, no metrics endpoint) for BENCH_SECONDS (default 60). Measured from outside, as an
 * operator would: CPU from /proc/<pid>/stat (utime + stime, all threads) over the run after a
 * 2 s settle (start-up module loading is a one-off, not idle cost), RSS from /proc/<pid>/status
 * at the end, jitter (actual − scheduled wake-up) from the daemon's own status.
 * Goals (issue 3): ≤ 0.5 % of one core, RSS ≤ 80 MB, p99 jitter ≤ 20 ms.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const SETTLE_MS = 2000;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may hold spaces): utime is 14th, stime 15th.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { dir, cleanup } = tempDir('icosfl-bench-idle-');
  const config = join(dir, 'agent.toml');
  writeFileSync(config, `[agent]\nstate_dir = "${join(dir, 'state')}"\nlog_level = "warn"\n\n[sampler]\ninterval_ms = 1000\n\n[trainer]\nenabled = false\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && k !== 'NOTIFY_SOCKET' && k !== 'WATCHDOG_USEC'));
  const child = spawn(process.execPath, [join(DIST, 'agent', 'cli.js'), 'run', '--config', config], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const pid = child.pid!;
  const socket = controlSocketPath(join(dir, 'state', 'run'));
  try {
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        await controlRequest(socket, { cmd: 'ping' }, 500);
        break;
      } catch (err) {
        if (Date.now() > until) throw err;
        await sleep(100);
      }
    }
    await sleep(SETTLE_MS);
    process.stderr.write(`agent-idle: daemon pid ${pid} ready; measuring ${SECONDS} s\n`);
    const t0 = performance.now();
    const c0 = cpuTicks(pid);
    let [tPrev, cPrev] = [t0, c0];
    for (let left = SECONDS; left > 0; left -= 10) {
      await sleep(Math.min(10, left) * 1000);
      const [t, c] = [performance.now(), cpuTicks(pid)];
      const cpu = ((c - cPrev) / CLK_TCK / ((t - tPrev) / 1000)) * 100;
      [tPrev, cPrev] = [t, c];
      process.stderr.write(`  ${Math.round((t - t0) / 1000)} s: cpu ${cpu.toFixed(2)} % of a core over the last 10 s, rss ${(statusKb(pid, 'VmRSS') / 1024).toFixed(1)} MB\n`);
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const cpuPct = ((cpuTicks(pid) - c0) / CLK_TCK / elapsedS) * 100;
    const rssMb = statusKb(pid, 'VmRSS') / 1024;
    const hwmMb = statusKb(pid, 'VmHWM') / 1024;
    const st = (await controlRequest(socket, { cmd: 'status' })) as { sampling: { samples_stored: number; skipped_slots: number; jitter_ms: { p50: number; p99: number; max: number } } };
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    if (code !== 0) throw new Error(`daemon exited with ${code} on SIGTERM`);
    const round = (v: number, d = 3) => Number(v.toFixed(d));
    const result = {
      bench: 'agent-idle',
      seconds: round(elapsedS, 1),
      cpu_pct_of_core: round(cpuPct),
      rss_mb: round(rssMb, 1),
      jitter_ms_p99: round(st.sampling.jitter_ms.p99),
      jitter_ms_p50: round(st.sampling.jitter_ms.p50),
      jitter_ms_max: round(st.sampling.jitter_ms.max),
      rss_peak_mb: round(hwmMb, 1),
      samples: st.sampling.samples_stored,
      skipped_slots: st.sampling.skipped_slots,
      goals: { cpu_pct_of_core: 0.5, rss_mb: 80, jitter_ms_p99: 20 },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`agent-idle failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
