import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { DIST, tempDir } from '../../helpers/paths.js';

/**
 * `icosfl-simulate` failures as a user meets them: truncated or corrupt archives (DATA), paths it
 * cannot create (CANT_CREATE), a --data that is not there (DATA), bad flag values (USAGE), each
 * a line naming the argument, with no zlib, errno or zod text.
 */
const tmp = tempDir('icosfl-simulate-errors-');
test.after(() => tmp.cleanup());

function simulate(...args: string[]) {
  const r = spawnSync(process.execPath, [join(DIST, 'simulate', 'cli.js'), ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A real ustar archive (python's tarfile writes the checksums) of two GCD-style files. */
function tarball(): Buffer {
  const path = join(tmp.dir, 'vms.tar');
  const py = `import tarfile, io, sys
with tarfile.open(sys.argv[1], 'w', format=tarfile.USTAR_FORMAT) as t:
    for name in ('vms/1', 'vms/2'):
        body = ''.join(f'{i % 7} {i % 5}\\n' for i in range(300)).encode()
        info = tarfile.TarInfo(name); info.size = len(body); t.addfile(info, io.BytesIO(body))`;
  const r = spawnSync('python3', ['-c', py, path]);
  assert.is(r.status, 0, String(r.stderr));
  return readFileSync(path);
}

test('convert: a whole archive converts; a truncated gzip, a truncated tar and a corrupt header are DATA naming SRC', () => {
  const tar = tarball();
  const good = join(tmp.dir, 'good.tar.gz');
  writeFileSync(good, gzipSync(tar));
  const ok = simulate('convert', '--from', 'gcd', good, '--out', join(tmp.dir, 'out-ok'));
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, 'wrote 2 client files');

  const gz = gzipSync(tar);
  const cutGz = join(tmp.dir, 'cut.tar.gz');
  writeFileSync(cutGz, gz.subarray(0, Math.floor(gz.length / 2)));
  const a = simulate('convert', '--from', 'gcd', cutGz, '--out', join(tmp.dir, 'out-a'));
  assert.is(a.status, exitCode('DATA'));
  assertCleanStderr(a.stderr);
  assert.match(a.stderr, `[DATA_INVALID] ${cutGz}: the archive's gzip stream is truncated (the file ends early)`);

  const cutTar = join(tmp.dir, 'cut.tar');
  writeFileSync(cutTar, tar.subarray(0, 512 + 100));
  const b = simulate('convert', '--from', 'gcd', cutTar, '--out', join(tmp.dir, 'out-b'));
  assert.is(b.status, exitCode('DATA'));
  assertCleanStderr(b.stderr);
  assert.match(b.stderr, /\[DATA_INVALID\] .*cut\.tar: the tar archive is truncated: vms\/1 needs \d+ bytes at byte 512, only 100 are left/);

  const bad = Buffer.from(tar);
  bad[10] = bad[10]! ^ 0x20;
  const badTar = join(tmp.dir, 'bad.tar');
  writeFileSync(badTar, bad);
  const c = simulate('convert', '--from', 'gcd', badTar, '--out', join(tmp.dir, 'out-c'));
  assert.is(c.status, exitCode('DATA'));
  assert.match(c.stderr, 'not a valid tar archive: the header at byte 0 fails its checksum');

  const text = simulate('convert', '--from', 'gcd', '/etc/hostname', '--out', join(tmp.dir, 'out-d'));
  assert.is(text.status, exitCode('DATA'));
  assertCleanStderr(text.stderr);
});

test('convert: SRC missing is DATA, --out it cannot create is CANT_CREATE, a bad --from is USAGE', () => {
  const good = join(tmp.dir, 'good2.tar.gz');
  writeFileSync(good, gzipSync(tarball()));
  const missing = simulate('convert', '--from', 'gcd', join(tmp.dir, 'nope.tar.gz'), '--out', join(tmp.dir, 'o'));
  assert.is(missing.status, exitCode('DATA'));
  assertCleanStderr(missing.stderr);
  assert.match(missing.stderr, `SRC: cannot read ${join(tmp.dir, 'nope.tar.gz')}: no such file or directory (ENOENT)`);
  const file = join(tmp.dir, 'plain');
  writeFileSync(file, 'x');
  const under = simulate('convert', '--from', 'gcd', good, '--out', join(file, 'out'));
  assert.is(under.status, exitCode('CANT_CREATE'));
  assertCleanStderr(under.stderr);
  // simulate/output-paths.ts checks output paths before any work, in its own words.
  assert.match(under.stderr, `[OUTPUT_UNWRITABLE] --out ${join(file, 'out')}: it, or a folder above it, is a file; nothing was run`);
  const nabMissing = simulate('convert', '--from', 'nab', join(tmp.dir, 'no-nab'), '--out', join(tmp.dir, 'o2'));
  assert.is(nabMissing.status, exitCode('DATA'));
  assertCleanStderr(nabMissing.stderr);
  assert.match(nabMissing.stderr, `cannot read ${join(tmp.dir, 'no-nab')}: no such file or directory (ENOENT)`);
  const from = simulate('convert', '--from', 'zip', good, '--out', join(tmp.dir, 'o3'));
  assert.is(from.status, exitCode('USAGE'));
  assert.match(from.stderr, "--from must be gcd or nab, got 'zip'");
  const flag = simulate('convert', '--form', 'gcd', good);
  assert.is(flag.status, exitCode('USAGE'));
  assertCleanStderr(flag.stderr);
  assert.match(flag.stderr, "unknown option '--form' for 'icosfl-simulate convert'");
});

test('run: --data missing is DATA, --plot it cannot create is CANT_CREATE, a bad --backend is USAGE naming it', () => {
  const data = join(tmp.dir, 'data');
  mkdirSync(data);
  writeFileSync(join(tmp.dir, 'plain'), 'x');
  writeFileSync(join(data, 'a.csv'), 'timestamp,cpu\n' + Array.from({ length: 50 }, (_, i) => `${i * 300},${i % 9}`).join('\n') + '\n');
  const missing = simulate('run', '--data', join(tmp.dir, 'no-data'), '--metrics', 'cpu');
  assert.is(missing.status, exitCode('DATA'));
  assertCleanStderr(missing.stderr);
  assert.match(missing.stderr, `[DATA_INVALID] --data: cannot read ${join(tmp.dir, 'no-data')}: no such file or directory (ENOENT)`);
  const plot = simulate('run', '--data', data, '--metrics', 'cpu', '--plot', join(tmp.dir, 'plain', 'x.svg'));
  assert.is(plot.status, exitCode('CANT_CREATE'));
  assertCleanStderr(plot.stderr);
  assert.match(plot.stderr, `[OUTPUT_UNWRITABLE] --plot ${join(tmp.dir, 'plain', 'x.svg')}: a folder on its path is a file; nothing was run`);
  const dirPlot = simulate('run', '--data', data, '--metrics', 'cpu', '--plot', data);
  assert.is(dirPlot.status, exitCode('CANT_CREATE'));
  assert.match(dirPlot.stderr, "is a directory; give a file name; nothing was run");
  const backend = simulate('run', '--data', data, '--metrics', 'cpu', '--backend', 'tensorflow');
  assert.is(backend.status, exitCode('USAGE'));
  assertCleanStderr(backend.stderr);
  assert.match(backend.stderr, /--backend: must be one of .*'cpu'.*, got 'tensorflow'/);
});

test.run();
