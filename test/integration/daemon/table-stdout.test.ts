import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../../helpers/paths.js';
import { ServiceProcess, runCoordinatorCli, writeCoordinatorConfig } from '../coordinator/harness.js';
import { DaemonProcess, runCli } from './harness.js';

/**
 * Every command that prints a table or JSON, run through its real entry point with stdout and
 * stderr captured apart and LOG_LEVEL=debug (so a log record that went to stdout would show):
 * stdout holds the table or the JSON object and nothing else; logs and notes are on stderr.
 */
const { dir, cleanup } = tempDir('icosfl-table-stdout-');
const daemons: DaemonProcess[] = [];
const services: ServiceProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  for (const s of services) s.kill();
  cleanup();
});
const DEBUG = { LOG_LEVEL: 'debug' };

/** Key/value rows as `status` prints them: a key (indented for sub-rows), two spaces, a value. */
function assertKeyValueTable(text: string, firstKey: string): void {
  const lines = text.split('\n');
  assert.is(lines.pop(), '', 'ends with a newline');
  assert.ok(lines[0]!.startsWith(`${firstKey} `), text);
  for (const l of lines) assert.match(l, /^ {0,2}\S+( \S+)* {2,}\S/, `a table row: ${JSON.stringify(l)}`);
}

test('agent sample: stdout is the ring table alone; the ring\'s and the sampler thread\'s logs go to stderr', async () => {
  const metrics = ['cpu_busy_pct', 'mem_used_pct', 'load1'];
  // An empty /proc: every collector fails, and the sampler thread warns about each.
  const proc = join(dir, 'empty-proc');
  mkdirSync(proc);
  const r = await runCli(['sample', '--seconds', '1', '--rows', '2', '--state-dir', join(dir, 'sample'), '--set', `sampler.metrics=${metrics.join(',')}`, '--set', 'sampler.interval_ms=200', '--set', `sampler.proc_root=${proc}`], DEBUG);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^ring \S+metrics\.ring$/);
  assert.match(lines[1]!, /^ {2}\d+ samples held \(capacity \d+\), newest \S+$/);
  assert.is(lines[2], '');
  assert.match(lines[3]!, /^metric +count +mean +min +max +\d\d:\d\d:\d\d +\d\d:\d\d:\d\d$/);
  assert.equal(lines.slice(4, 7).map((l) => l.split(' ')[0]), metrics);
  assert.equal(lines.slice(7), ['']);
  assert.not.match(r.stdout, /COLLECTOR_FAILED|"level"/);
  // Logs on stderr: JSON records (stderr is a pipe here), the worker thread's among them.
  const records = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; thread?: string; code?: string });
  assert.ok(records.some((x) => x.msg === 'ring file created'), r.stderr);
  assert.ok(records.some((x) => x.thread === 'sampler' && x.code === 'COLLECTOR_FAILED'), r.stderr);
});

test('agent status and status --json against a running daemon: the table or the JSON object only', async () => {
  const state = join(dir, 'daemon');
  const d = DaemonProcess.spawn(['run', '--state-dir', state, '--set', 'sampler.interval_ms=200'], DEBUG);
  daemons.push(d);
  await d.waitForLog('ready', 15_000);
  const text = await runCli(['status', '--state-dir', state], DEBUG);
  assert.is(text.code, 0, text.stderr);
  assertKeyValueTable(text.stdout, 'daemon');
  assert.match(text.stdout, /^ring {2,}\S+metrics\.ring: \d+ \/ \d+ samples/m);
  const json = await runCli(['status', '--state-dir', state, '--json'], DEBUG);
  assert.is(json.code, 0, json.stderr);
  assert.is((JSON.parse(json.stdout) as { pid: number }).pid, d.proc.pid);
  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0);
});

test('agent backends: the table or the JSON object on stdout; Dawn\'s adapter warnings on no stream unless LOG_LEVEL=debug', async () => {
  const fast = ['--state-dir', join(dir, 'backends'), '--set', 'trainer.calibration_batches=1', '--set', 'trainer.batch_size=32'];
  const text = await runCli(['backends', ...fast]);
  assert.is(text.code, 0, text.stderr);
  const lines = text.stdout.split('\n');
  assert.match(lines[0]!, /^model mlp, lookback \d+, horizon \d+, \d+ channels, batch 32$/);
  for (const l of lines.slice(1, 7)) assert.match(l, /^[* ] (tfjs-node-gpu|webgpu|tfjs-node|native|wasm|cpu) +(not loaded: |\S.*samples\/s$)/);
  assert.match(lines[7]!, /^\* = used: /);
  assert.equal(lines.slice(8), ['']);
  assert.not.match(text.stderr, /artificially reduced|Warning:/, 'Dawn\'s warnings do not reach the terminal');

  const json = await runCli(['backends', ...fast, '--json'], DEBUG);
  assert.is(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { backends: { name: string; reason?: string }[] };
  // At debug, what Dawn printed while probing is in the log, as records: never raw on stderr.
  const stderr = json.stderr.split('\n').filter((l) => l !== '');
  for (const l of stderr) assert.ok(l.startsWith('{'), `only log records on stderr: ${l}`);
  const dawn = stderr.map((l) => JSON.parse(l) as { msg: string; line?: string }).filter((x) => x.msg === 'Dawn wrote on stderr while probing its adapter');
  // This machine's one adapter is Mesa's software one, whose limits Dawn reduces and says so.
  if (/only a software WebGPU adapter/.test(out.backends.find((b) => b.name === 'webgpu')!.reason ?? '')) {
    assert.ok(dawn.some((x) => /artificially reduced/.test(x.line ?? '')), json.stderr);
  }
});

test('coordinator status, agents and rounds: the table or the JSON object only', async () => {
  const config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: join(dir, 'coordinator'), codec: 'plaintext' },
    broker: { embedded_port: 0 },
    federation: { id: 'table-stdout', min_agents: 1 },
  });
  const s = ServiceProcess.spawn(['serve', '--config', config], DEBUG);
  services.push(s);
  await s.waitForLog('coordinator ready');
  const status = await runCoordinatorCli(['status', '--config', config], DEBUG);
  assert.is(status.code, 0, status.stderr);
  assertKeyValueTable(status.stdout, 'coordinator');
  assert.match(status.stdout, /^federation {2,}table-stdout, codec plaintext/m);
  assert.equal((await runCoordinatorCli(['agents', '--config', config], DEBUG)).stdout, 'no agent has been heard from yet\n');
  assert.equal((await runCoordinatorCli(['rounds', '--config', config], DEBUG)).stdout, 'no round has finished yet\n');
  for (const cmd of ['status', 'agents', 'rounds']) {
    const j = await runCoordinatorCli([cmd, '--config', config, '--json'], DEBUG);
    assert.is(j.code, 0, j.stderr);
    assert.type(JSON.parse(j.stdout), 'object', `${cmd} --json`);
  }
  s.proc.kill('SIGTERM');
  assert.is((await s.exited).code, 0);
});

test.run();
