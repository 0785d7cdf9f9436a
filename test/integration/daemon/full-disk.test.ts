import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mountSmallFs, type SmallFs } from '../../helpers/small-fs.js';
import { CLI, DaemonProcess, runCli, sleep, type Exit } from './harness.js';

// The real daemon on a real full filesystem (tmpfs). At start, a ring that cannot be reserved is
// a clear error and exit 74 (no SIGBUS, no stale socket). Running, with its state directory and
// its stdout log file on a disk that fills up, it keeps sampling, reports the failing path and
// errno in `status` and in /metrics, and recovers without a restart when space comes back.
let fs: SmallFs | undefined;
const daemons: DaemonProcess[] = [];
const children: ReturnType<typeof spawn>[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs?.unmount();
});

function config(dir: string, capacity: number, extra = ''): string {
  const path = join(dir, `agent-${capacity}.toml`);
  writeFileSync(path, `[agent]\nstate_dir = "${join(dir, 'state')}"\n\n[trainer]\nenabled = false\n\n[sampler]\ninterval_ms = 100\nring_capacity = ${capacity}\n${extra}\n`);
  return path;
}

interface Status {
  sampling: { samples_stored: number };
  storage: { degraded: boolean; failing: { kind: string; path: string; errno: string }[]; write_failures: Record<string, number>; recoveries: number };
  prometheus: { url: string } | null;
}

async function status(cfg: string): Promise<Status> {
  const r = await runCli(['status', '--config', cfg, '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

/** Polls `status` until `ok` holds (bounded: 50 tries, 200 ms apart). */
async function statusUntil(cfg: string, ok: (s: Status) => boolean, what: string): Promise<Status> {
  let s = await status(cfg);
  for (let i = 0; i < 50 && !ok(s); i++) {
    await sleep(200);
    s = await status(cfg);
  }
  assert.ok(ok(s), `${what}: ${JSON.stringify(s.storage)}`);
  return s;
}

test('a ring that does not fit the disk: exit 74 with a log line naming the path, the bytes needed and free', async () => {
  fs = mountSmallFs(2 * 1024 * 1024);
  const dir = fs.dir;
  const cfg = config(dir, 1_000_000); // ≈ 16 MB of ring on a 2 MiB filesystem
  const d = DaemonProcess.spawn(['run', '--config', cfg]);
  daemons.push(d);
  const exit = await d.exited;
  assert.equal([exit.code, exit.signal], [74, null], d.stderr);
  const ring = join(dir, 'state', 'metrics.ring');
  const line = d.logs.find((l) => l.msg === 'stopping');
  assert.ok(line, `a log line before the exit: ${d.logs.map((l) => l.msg).join(' | ')}`);
  assert.match(String(line!.why), ring);
  assert.match(String(line!.why), /cannot reserve the \d+ bytes of ring file/);
  assert.match(String(line!.why), /bytes free on its filesystem/);
  assert.match(String(line!.why), /lower sampler\.ring_capacity/);
  assert.match(d.stderr, 'RING_NO_SPACE');
  assert.not.ok(existsSync(ring), 'no partial ring left');
  assert.not.ok(existsSync(join(dir, 'state', 'run', 'agent.sock')), 'no stale socket');
  fs.unmount();
  fs = undefined;
});

test('running on a disk that fills up: keeps sampling, reports the failing log file, recovers without a restart', async () => {
  fs = mountSmallFs(4 * 1024 * 1024);
  const dir = fs.dir;
  const cfg = config(dir, 1024, '[prometheus]\nenabled = true\nport = 0\n');
  mkdirSync(join(dir, 'logs'));
  const logPath = join(dir, 'logs', 'agent.log');
  const out = openSync(logPath, 'w');
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && k !== 'NOTIFY_SOCKET')), LOG_LEVEL: 'info' };
  const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { env, stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += String(b)));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  for (let i = 0; i < 100 && !readFileSync(logPath, 'utf8').includes('"msg":"ready"'); i++) await sleep(100);
  assert.match(readFileSync(logPath, 'utf8'), '"msg":"ready"', stderr);

  fs.fill();
  const storedAtFull = (await status(cfg)).sampling.samples_stored;
  // A reload logs a few lines: once they outgrow the slack of the log file's last page, writes to
  // the full disk fail (ENOSPC), which must not end the daemon. Bounded: at most 40 reloads.
  let degraded = await status(cfg);
  for (let i = 0; i < 40 && !degraded.storage.degraded; i++) {
    child.kill('SIGHUP');
    await sleep(150);
    degraded = await status(cfg);
  }
  assert.ok(degraded.storage.degraded, `the failing log write is reported: ${JSON.stringify(degraded.storage)}`);
  const failing = degraded.storage.failing.find((f) => f.kind === 'log');
  assert.equal([failing?.path, failing?.errno], [logPath, 'ENOSPC']);
  assert.ok(degraded.storage.write_failures.log >= 1);
  const metrics = await (await fetch(degraded.prometheus!.url)).text();
  assert.match(metrics, 'icosfl_storage_degraded 1');
  assert.match(metrics, /icosfl_storage_write_failures_total\{kind="log"\} [1-9]/);
  await sleep(500);
  const stillSampling = await status(cfg);
  assert.ok(stillSampling.sampling.samples_stored > storedAtFull + 2, `sampling continued on the full disk: ${storedAtFull} → ${stillSampling.sampling.samples_stored}`);
  assert.is(child.exitCode, null, 'still running');

  fs.release();
  child.kill('SIGHUP');
  const recovered = await statusUntil(cfg, (s) => !s.storage.degraded, 'the log writes again once space is back');
  assert.ok(recovered.storage.recoveries >= 1);
  assert.match(await (await fetch(recovered.prometheus!.url)).text(), 'icosfl_storage_degraded 0');
  const text = readFileSync(logPath, 'utf8');
  const reloads = text.split('"msg":"config reloaded"').length - 1;
  assert.ok(reloads >= 3, `the lines held back while the disk was full were written once space came back (${reloads} reload lines)`);
  const before = recovered.sampling.samples_stored;
  await sleep(500);
  assert.ok((await status(cfg)).sampling.samples_stored > before + 2, 'and it keeps sampling');

  child.kill('SIGTERM');
  const exit = await exited;
  assert.equal([exit.code, exit.signal], [0, null], stderr);
  assert.match(readFileSync(logPath, 'utf8'), '"msg":"stopped"');
});

test.run();
