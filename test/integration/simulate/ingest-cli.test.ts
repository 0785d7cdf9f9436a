import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { irregularNabCpu } from '../../helpers/irregular-traces.js';
import { DIST, SHARED_DATA, tempDir } from '../../helpers/paths.js';

// What a user meets: the real icosfl-simulate CLI as a child process, on the real traces.
const tmp = tempDir('icosfl-ingest-cli-');
test.after(() => tmp.cleanup());
const cli = join(DIST, 'simulate', 'cli.js');
const NAB = join(SHARED_DATA, 'nab-server-metrics');

function simulate(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
}

test('convert --from nab: the summary counts the kinds and NAB\'s repeated stamps, and says how to keep one kind', () => {
  const out = join(tmp.dir, 'nab');
  const r = simulate(['convert', '--from', 'nab', NAB, '--out', out]);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines[0], `wrote 20 client files to ${out}: cpu 11, disk_write_bytes 2, network_in 3, requests 1, unknown 1, latency 1, temperature 1`);
  assert.ok(lines.includes('machine_temperature_system_failure.csv: 12 rows repeat an earlier timestamp (first at line 10151); the later row of each timestamp kept'), r.stdout);
  assert.is(lines.filter((l) => / rows repeat an earlier timestamp/.test(l)).length, 4);
  assert.match(lines[lines.length - 1]!, /^run --metrics needs its columns in every file: --kind KIND converts one kind/);
  const cpu = join(tmp.dir, 'nab-cpu');
  const k = simulate(['convert', '--from', 'nab', NAB, '--out', cpu, '--kind', 'cpu']);
  assert.is(k.status, 0, k.stderr);
  assert.is(k.stdout.split('\n')[0], `wrote 11 client files to ${cpu}: cpu 11`);
  for (const f of readdirSync(cpu)) assert.is(readFileSync(join(cpu, f), 'utf8').split('\n')[0], 'timestamp,cpu', f);
  const bad = simulate(['convert', '--from', 'nab', NAB, '--out', cpu, '--kind', 'gpu']);
  assert.is(bad.status, 64);
  assert.match(bad.stderr, /--kind must be one of cpu, network_in, disk_write_bytes, requests, latency, temperature, .*, unknown, got 'gpu'/);
});

test('a bad cell in run\'s data: exit 65 naming the file, line and rule', () => {
  const dir = join(tmp.dir, 'bad-cell');
  mkdirSync(dir);
  writeFileSync(join(dir, 'm1.csv'), 'timestamp,cpu\n0,1\n300,0x10\n');
  const r = simulate(['run', '--data', dir, '--metrics', 'cpu']);
  assert.is(r.status, 65);
  assert.is(r.stderr, `icosfl-simulate: [DATA_INVALID] ${join(dir, 'm1.csv')}:3: cpu value '0x10' is not decimal notation (hexadecimal, binary or octal prefix); write the value in decimal (an empty cell is a missing sample)\n`);
});

test('an irregular trace is refused for its gaps with a --resample hint, and runs with --resample', () => {
  irregularNabCpu(tmp.dir, { clients: 3, rows: 1200, seed: 11 });
  const data = join(tmp.dir, 'irregular');
  const base = ['run', '--data', data, '--metrics', 'cpu', '--rounds', '1', '--plaintext', '--backend', 'native', '--json'];
  const refused = simulate(base);
  assert.is(refused.status, 65, refused.stderr);
  assert.match(refused.stderr, /\[DATA_INVALID\] no client has enough windows for lookback 12 \+ horizon 5: 3 of 3 files would have enough samples, but a window cannot span a gap and they have \d+ gaps in the timestamps .*; --resample SECONDS puts irregularly sampled traces on a regular grid/);
  const r = simulate([...base, '--resample', '400']);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { clients: number; skipped_clients: string[]; resample: { seconds: number; bins: number; empty_bins: number; merged_rows: number }; timestamp_gaps: { gaps: number } };
  assert.equal([out.clients, out.skipped_clients], [3, []]);
  assert.is(out.resample.seconds, 400);
  assert.is(out.resample.merged_rows + out.resample.bins - out.resample.empty_bins, 3 * 1200, 'every row is in a bin: merged ones or one per filled bin');
  assert.is(out.timestamp_gaps.gaps, 0, 'on the grid no timestamp is skipped');
});

test('a bad --plot fails before any data is read or model loaded: exit 73 naming the flag and path', () => {
  const gcd = join(tmp.dir, 'gcd');
  const c = simulate(['convert', '--from', 'gcd', join(SHARED_DATA, 'google-gcd-vms-cpu-mem', 'GCD_VMs.tar.gz'), '--out', gcd, '--limit', '4']);
  assert.is(c.status, 0, c.stderr);
  const plot = join(tmp.dir, 'no-such-dir', 'plot.svg');
  // info level: the run logs its backend choice and rounds on stderr; none may come before the error.
  const r = simulate(['run', '--data', gcd, '--metrics', 'cpu,mem', '--rounds', '1', '--plot', plot], { LOG_LEVEL: 'info' });
  assert.is(r.status, 73, r.stderr);
  assert.is(r.stderr, `icosfl-simulate: [OUTPUT_UNWRITABLE] --plot ${plot}: the directory ${join(tmp.dir, 'no-such-dir')} does not exist; nothing was run\n`);
  assert.is(r.stdout, '');
  // Checked before the data: a missing --data directory is not reached.
  const first = simulate(['run', '--data', join(tmp.dir, 'no-data'), '--metrics', 'cpu', '--plot', plot]);
  assert.is(first.status, 73, first.stderr);
  // A directory as the plot, a file where a directory should be; an empty path is a usage error.
  const isDir = simulate(['run', '--data', gcd, '--metrics', 'cpu', '--plot', tmp.dir]);
  assert.is(isDir.status, 73);
  assert.match(isDir.stderr, /--plot .*: is a directory; give a file name; nothing was run/);
  writeFileSync(join(tmp.dir, 'a-file'), '');
  const underFile = simulate(['run', '--data', gcd, '--metrics', 'cpu', '--plot', join(tmp.dir, 'a-file', 'p.svg')]);
  assert.is(underFile.status, 73);
  assert.match(underFile.stderr, /--plot .*a-file\/p\.svg: a folder on its path is a file; nothing was run/);
  assert.is(simulate(['run', '--data', gcd, '--metrics', 'cpu', '--plot', '']).status, 64);
  // A good path is neither created nor truncated before the run ends (nothing is left by a failed run).
  const keep = join(tmp.dir, 'existing.svg');
  writeFileSync(keep, 'old');
  const failed = simulate(['run', '--data', join(tmp.dir, 'no-data'), '--metrics', 'cpu', '--plot', keep]);
  assert.is(failed.status, 65, failed.stderr);
  assert.is(readFileSync(keep, 'utf8'), 'old');
  const fresh = join(tmp.dir, 'fresh.svg');
  assert.is(simulate(['run', '--data', join(tmp.dir, 'no-data'), '--metrics', 'cpu', '--plot', fresh]).status, 65);
  assert.not.ok(existsSync(fresh));
});

test('a good --plot is written after the run; convert --out and federation --keep that cannot be directories: exit 73', () => {
  const gcd = join(tmp.dir, 'gcd');
  const plot = join(tmp.dir, 'ok.svg');
  const r = simulate(['run', '--data', gcd, '--metrics', 'cpu', '--rounds', '1', '--plaintext', '--backend', 'native', '--plot', plot]);
  assert.is(r.status, 0, r.stderr);
  assert.ok(statSync(plot).size > 0);
  assert.match(readFileSync(plot, 'utf8'), /^<svg /);
  writeFileSync(join(tmp.dir, 'a-file'), '');
  const out = simulate(['convert', '--from', 'nab', NAB, '--out', join(tmp.dir, 'a-file', 'nab')]);
  assert.is(out.status, 73);
  assert.match(out.stderr, /^icosfl-simulate: \[OUTPUT_UNWRITABLE\] --out .*a-file\/nab: it, or a folder above it, is a file; nothing was run\n$/);
  const keep = simulate(['federation', '--keep', join(tmp.dir, 'a-file', 'fed')]);
  assert.is(keep.status, 73);
  assert.match(keep.stderr, /^icosfl-simulate: \[OUTPUT_UNWRITABLE\] --keep .*a-file\/fed: it, or a folder above it, is a file; nothing was run\n$/);
});

test.run();
