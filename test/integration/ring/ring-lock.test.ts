import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { IcosflError } from '../../../common/errors.js';
import { MetricRing } from '../../../native/ring.js';
import { DIST, FIXTURES, tempDir } from '../../helpers/paths.js';

// Two processes, one ring: the second is refused while the first lives, and the kernel releases
// the lock when the holder dies (even by SIGKILL), so a restarted daemon gets its ring back.
const { dir, cleanup } = tempDir('icosfl-ring-lock-');
test.after(cleanup);

test('a second process is refused with RING_LOCKED until the holder dies', async () => {
  const path = join(dir, 'locked.ring');
  const holder = spawn(process.execPath, [join(FIXTURES, 'ring', 'ring-child.mjs'), join(DIST, 'native', 'ring.js'), path, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(holder, 'exit');
  await new Promise<void>((resolve, reject) => {
    holder.stdout.on('data', (d) => String(d).includes('holding') && resolve());
    holder.once('exit', () => reject(new Error('holder exited early')));
  });
  const open = () => MetricRing.open({ path, capacity: 16384, channels: 2, schemaTag: 'a,b' });
  try {
    open().close();
    assert.unreachable('opened a ring another process holds');
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'RING_LOCKED');
    assert.match((err as Error).message, /locked\.ring is locked by another process/);
  }
  holder.kill('SIGKILL');
  await exited;
  const ring = open();
  assert.is(ring.size, 0);
  ring.close();
});

test.run();
