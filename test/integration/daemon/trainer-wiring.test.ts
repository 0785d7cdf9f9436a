import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlRequest, controlSocketPath } from '../../../agent/daemon/control-client.js';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, sleep, writeConfig } from './harness.js';

/**
 * Heavy modules stay out of the daemon until there is something to train on. An ESM resolve hook
 * (registered with --import, so it sees every thread) prints each @tensorflow or node-seal module
 * the process resolves. The second test shows the hook does see them once the ring holds enough
 * samples and the daemon starts the real training job, whose `predict` then answers on the socket.
 */
const { dir, cleanup } = tempDir('icosfl-trainer-wiring-');
const daemons: DaemonProcess[] = [];
test.after(() => {
  for (const d of daemons) d.kill();
  cleanup();
});

const HOOK = `export async function resolve(s, c, next) { const r = await next(s, c); if (/@tensorflow|node-seal/.test(r.url)) process._rawDebug('HEAVY-MODULE ' + r.url); return r; }`;
const REGISTER = `data:text/javascript,import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));`;

function start(name: string, minSamples: number): { d: DaemonProcess; socket: string } {
  const trainer = `enabled = true\nmodel = "linear"\nbackend = "cpu"\nlookback = 4\nhorizon = 1\nmin_samples = ${minSamples}\nepochs = 1`;
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["mem_used_pct", "load1"]\n', `${name}.toml`, trainer);
  const stateDir = join(dir, name);
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', stateDir], {}, ['--import', REGISTER]);
  daemons.push(d);
  return { d, socket: controlSocketPath(join(stateDir, 'run')) };
}

test('training enabled, too few samples yet: neither tfjs nor node-seal is loaded', async () => {
  const { d, socket } = start('waiting', 80_000);
  await d.waitForLog('ready');
  await sleep(1500);
  const st = (await controlRequest(socket, { cmd: 'status' })) as { trainer: Record<string, unknown> };
  assert.equal(st.trainer, { enabled: true, running: false, starts_at_samples: 80_000 + 4 + 1 - 1 });
  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0);
  assert.not.match(d.stderr, 'HEAVY-MODULE');
});

test('once the ring holds enough samples the training job starts, trains, and serves predict', async () => {
  const { d, socket } = start('training', 20);
  await d.waitForLog('ready');
  assert.not.match(d.stderr, 'HEAVY-MODULE', 'not at start');
  await d.waitForLog('training job started', 20_000);
  assert.match(d.stderr, 'HEAVY-MODULE', 'the hook sees tfjs once the job starts');
  const answer = (await controlRequest(socket, { cmd: 'predict' }, 60_000)) as { forecast: Record<string, number[]> };
  assert.equal(Object.keys(answer.forecast), ['mem_used_pct', 'load1']);
  assert.ok(answer.forecast.mem_used_pct!.every(Number.isFinite), JSON.stringify(answer));
  const st = (await controlRequest(socket, { cmd: 'status' })) as { trainer: { running: boolean } };
  assert.is(st.trainer.running, true);
  const sentAt = Date.now();
  d.proc.kill('SIGTERM');
  const exit = await d.exited;
  assert.is(exit.code, 0, d.stderr);
  assert.ok(exit.at - sentAt < 5000, `exited ${exit.at - sentAt} ms after SIGTERM`);
});

test.run();
