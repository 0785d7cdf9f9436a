// The RAPL access rule applied by the real systemd-tmpfiles to a fixture root: energy_uj files
// (root-only 0400 on current kernels) become readable by group icosfl, and nothing else moves.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT, tempDir } from '../../helpers/paths.js';

const { dir: root, cleanup } = tempDir('icosfl-rapl-');
test.after(cleanup);

const ICOSFL_GID = 990;
const powercap = join(root, 'sys/class/powercap');

function counter(zone: string, file = 'energy_uj'): string {
  mkdirSync(join(powercap, zone), { recursive: true });
  const path = join(powercap, zone, file);
  writeFileSync(path, '123456\n', { mode: 0o400 });
  return path;
}

test('tmpfiles.d/icosfl-rapl.conf opens every RAPL zone energy_uj to group icosfl, read-only', () => {
  // systemd-tmpfiles --root resolves the group name in the root's own /etc/group.
  mkdirSync(join(root, 'etc/tmpfiles.d'), { recursive: true });
  writeFileSync(join(root, 'etc/group'), `root:x:0:\nicosfl:x:${ICOSFL_GID}:\n`);
  copyFileSync(join(REPO_ROOT, 'systemd/tmpfiles.d/icosfl-rapl.conf'), join(root, 'etc/tmpfiles.d/icosfl-rapl.conf'));
  const zones = [counter('intel-rapl:0'), counter('intel-rapl:0:1'), counter('intel-rapl-mmio:0')];
  const untouched = counter('intel-rapl:0', 'max_energy_range_uj');

  execFileSync('systemd-tmpfiles', ['--create', `--root=${root}`, 'icosfl-rapl.conf']);

  for (const path of zones) {
    const st = statSync(path);
    assert.is(st.mode & 0o777, 0o440, path);
    assert.is(st.gid, ICOSFL_GID, path);
  }
  assert.is(statSync(untouched).mode & 0o777, 0o400, 'a file the rule does not name changed');
});

test.run();
