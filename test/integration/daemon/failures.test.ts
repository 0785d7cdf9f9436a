import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlRequest, controlSocketPath } from '../../../agent/daemon/control-client.js';
import { exitCode } from '../../../common/exit-codes.js';
import { assertCleanStderr } from '../../helpers/clean-stderr.js';
import { tempDir } from '../../helpers/paths.js';
import { DaemonProcess, runCli, sleep, writeConfig } from './harness.js';

/**
 * Parts of the daemon that fail while sampling goes on are reported as failed, with the reason:
 * a training job whose forced backend cannot load (tfjs-node is not installed here) and a
 * Prometheus endpoint whose port another process holds. Neither reads as "starting" or "off".
 */
const { dir, cleanup } = tempDir('icosfl-daemon-failures-');
const daemons: DaemonProcess[] = [];
let holder: Server | undefined;
test.after(() => {
  for (const d of daemons) d.kill();
  holder?.close();
  cleanup();
});

test('a forced backend that cannot load: trainer FAILED in status, predict exits UNAVAILABLE with the reason', async () => {
  const trainer = 'enabled = true\nmodel = "linear"\nbackend = "tfjs-node"\nlookback = 4\nhorizon = 1\nmin_samples = 5\nepochs = 1';
  const config = writeConfig(dir, '[sampler]\ninterval_ms = 100\nmetrics = ["mem_used_pct", "load1"]\n', 'forced.toml', trainer);
  const stateDir = join(dir, 'forced');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', stateDir]);
  daemons.push(d);
  const socket = controlSocketPath(join(stateDir, 'run'));
  await d.waitForLog('ready');
  await d.waitForLog('training job could not start', 30_000);
  const st = (await controlRequest(socket, { cmd: 'status' })) as { trainer: Record<string, unknown> };
  assert.is(st.trainer.running, false);
  assert.is(st.trainer.state, 'failed');
  assert.match(String(st.trainer.error), /tfjs-node/);
  const text = await runCli(['status', '--socket', socket]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /trainer\s+FAILED to start: no TensorFlow\.js backend could be loaded \(.*tfjs-node/);
  const predict = await runCli(['predict', '--socket', socket]);
  assert.is(predict.code, exitCode('UNAVAILABLE'), predict.stderr);
  assertCleanStderr(predict.stderr);
  assert.match(predict.stderr, /\[BACKEND_UNAVAILABLE\] daemon refused 'predict': the training job could not start: no TensorFlow\.js backend could be loaded/);
  assert.not.match(predict.stderr, /retry/);
  // Still failed a while later: no retry loop turns it back into "starting" or "idle".
  await sleep(1500);
  const later = (await controlRequest(socket, { cmd: 'status' })) as { trainer: Record<string, unknown> };
  assert.is(later.trainer.state, 'failed');
  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0, d.stderr);
});

test('the federation job with a forced backend that cannot load: federation FAILED in status, predict exits UNAVAILABLE', async () => {
  const federation = '[federation]\nenabled = true\ncodec = "plaintext"\nfederation_id = "failures"\nbroker = "mqtt://127.0.0.1:9"\n';
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 100\nmetrics = ["mem_used_pct", "load1"]\n\n${federation}`, 'fed.toml', 'backend = "tfjs-node"');
  const stateDir = join(dir, 'fed');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', stateDir]);
  daemons.push(d);
  const socket = controlSocketPath(join(stateDir, 'run'));
  await d.waitForLog('ready');
  await d.waitForLog('federation job could not start; sampling continues', 30_000);
  const text = await runCli(['status', '--socket', socket]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /federation\s+FAILED to start: no TensorFlow\.js backend could be loaded \(.*tfjs-node/);
  const predict = await runCli(['predict', '--socket', socket]);
  assert.is(predict.code, exitCode('UNAVAILABLE'), predict.stderr);
  assertCleanStderr(predict.stderr);
  assert.match(predict.stderr, /\[TRAINER_NOT_RUNNING\] daemon refused 'predict': the training job could not start: no TensorFlow\.js backend/);
  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0, d.stderr);
});

test('a Prometheus port held by another process: status and log say failed and why, not off', async () => {
  holder = createServer();
  await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  const config = writeConfig(dir, `[sampler]\ninterval_ms = 200\n\n[prometheus]\nenabled = true\nport = ${port}\n`, 'prom.toml');
  const stateDir = join(dir, 'prom');
  const d = DaemonProcess.spawn(['run', '--config', config, '--state-dir', stateDir]);
  daemons.push(d);
  const socket = controlSocketPath(join(stateDir, 'run'));
  const logged = await d.waitForLog('metrics endpoint failed to listen; sampling continues without it');
  assert.match(String(logged.reason), `cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE)`);
  await d.waitForLog('ready');
  const st = (await controlRequest(socket, { cmd: 'status' })) as { prometheus: Record<string, unknown> | null };
  assert.equal(st.prometheus, { url: null, error: `cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE); choose another prometheus.port or stop what holds it` });
  const text = await runCli(['status', '--socket', socket]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`prometheus\\s+FAILED: cannot listen on 127\\.0\\.0\\.1:${port}`));
  d.proc.kill('SIGTERM');
  assert.is((await d.exited).code, 0, d.stderr);
});

test.run();
