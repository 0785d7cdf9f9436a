// The coordinator's admin roles (SECURITY.md "Roles") through the real entry point, with real
// file modes: the service listens on coordinator.sock (viewer: status, agents, rounds) and
// operator.sock (also pause, resume), each 0660 in a 0711 directory; the deployment gives each
// socket its role's group (the unit's ExecStartPost=, done here by the test as root). The CLI
// runs as nobody (test/helpers/as-nobody.ts) so the kernel's permission check is what refuses;
// not as root, a role is granted by mode 0660 and withheld by mode 0000 instead. Also: a pause
// lets the round in progress finish, announces nothing more, survives a restart; resume goes on.
import { chmodSync, chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCode } from '../../../common/exit-codes.js';
import type { Announce } from '../../../common/protocol/messages.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { connectMqtt, type MqttTransport } from '../../../common/transport/mqtt.js';
import type { StatusAnswer } from '../../../coordinator/commands/status.js';
import { asNobody } from '../../helpers/as-nobody.js';
import { tempDir } from '../../helpers/paths.js';
import { exitAfter, waitFor, within } from '../../helpers/wait.js';
import { runCoordinatorCli, ServiceProcess, writeCoordinatorConfig } from './harness.js';

exitAfter(180_000, 'coordinator/roles.test');
const { dir, cleanup } = tempDir('icosfl-roles-');
const FEDERATION = 'roles-test';
const RUN = join(dir, 'run');
const VIEWER_SOCK = join(RUN, 'coordinator.sock');
const OPERATOR_SOCK = join(RUN, 'operator.sock');
const AS_ROOT = process.getuid?.() === 0;
const services: ServiceProcess[] = [];
const transports: MqttTransport[] = [];
const messengers: Messenger[] = [];
let config = '';
let service: ServiceProcess | undefined;
let nobody: ReturnType<typeof asNobody> | undefined;

test.before(async () => {
  // nobody must reach the config and the runtime directory (as for an operator's shell).
  chmodSync(dir, 0o711);
  const keys = await runCoordinatorCli(['keys', 'init', '--out', join(dir, 'keys'), '--federation-id', FEDERATION]);
  assert.is(keys.code, 0, keys.stderr);
  config = writeCoordinatorConfig(dir, 'coordinator.toml', {
    coordinator: { state_dir: 'state', runtime_dir: 'run', keys: 'keys/coordinator.json', log_level: 'info' },
    broker: { embedded_port: 0 },
    federation: { min_agents: 1, round_timeout_s: 1.5, ack_timeout_s: 1, round_interval_s: 0.5 },
  });
  chmodSync(config, 0o644);
  nobody = asNobody();
  await startService();
});

test.after(async () => {
  nobody?.restore();
  for (const m of messengers) m.close();
  await Promise.all(transports.map((t) => t.close({ force: true }).catch(() => undefined)));
  for (const s of services) s.kill();
  await Promise.all(services.map((s) => within(s.exited, 5000, 'a killed service to exit').catch(() => undefined)));
  cleanup();
});

async function startService(): Promise<void> {
  service = ServiceProcess.spawn(['serve', '--config', config]);
  services.push(service);
  await service.waitForLog('coordinator ready');
}

/** What the unit's ExecStartPost= does per role: the socket's group is nobody's (root) or its mode lets the owner in (not root). */
function grant(socket: string, yes: boolean): void {
  if (AS_ROOT) chownSync(socket, 0, yes ? 65534 : 0);
  else chmodSync(socket, yes ? 0o660 : 0o000);
}

/** The CLI as the unprivileged user (nobody, or this user when not root). */
const asUser = (...args: string[]) => runCoordinatorCli(args, {}, 60_000, nobody!.spawn);
const status = async (): Promise<StatusAnswer> => {
  const r = await runCoordinatorCli(['status', '--socket', VIEWER_SOCK, '--json']);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusAnswer;
};

/** A fake agent that says it is online and records the announcements it gets. */
async function fakeAgent(broker: string): Promise<Announce[]> {
  const logger = pino({ level: 'silent' });
  const transport = await connectMqtt(broker, { clientId: `agent-${transports.length}`, logger });
  transports.push(transport);
  const messenger = new Messenger({ transport, federation: FEDERATION, accept: new Set(['announce', 'global']), logger });
  messengers.push(messenger);
  const announcements: Announce[] = [];
  messenger.onMessage((m) => void (m.type === 'announce' && announcements.push(m)));
  await transport.subscribe(messenger.topics.round);
  await messenger.send({ type: 'presence', federation: FEDERATION, agent: 'agent-1', state: 'online', at: Date.now() });
  return announcements;
}

test('one socket per role, each 0660, in a 0711 directory (searchable, not listable)', () => {
  assert.is(statSync(RUN).mode & 0o777, 0o711);
  for (const s of [VIEWER_SOCK, OPERATOR_SOCK]) {
    const st = statSync(s);
    assert.ok(st.isSocket(), `${s} is a socket`);
    assert.is(st.mode & 0o777, 0o660, s);
  }
});

test('a viewer may ask status, agents and rounds; pause and resume are refused, exit 77, naming the role', async () => {
  grant(VIEWER_SOCK, true);
  grant(OPERATOR_SOCK, false);
  for (const cmd of ['status', 'agents', 'rounds']) {
    const r = await asUser(cmd, '--socket', VIEWER_SOCK, '--json');
    assert.is(r.code, 0, `${cmd}: ${r.stderr}`);
    JSON.parse(r.stdout);
  }
  for (const cmd of ['pause', 'resume']) {
    // The operator socket's own mode refuses the connection...
    const denied = await asUser(cmd, '--config', config);
    assert.is(denied.code, exitCode('NO_PERMISSION'), denied.stderr);
    assert.match(denied.stderr, `[CONTROL_PERMISSION_DENIED] cannot open icosfl-coordinator's control socket ${OPERATOR_SOCK}: permission denied (EACCES); run as root or as a member of group icosfl-operators`);
    // ...and the viewer socket, asked for it, refuses the request itself.
    const forbidden = await asUser(cmd, '--socket', VIEWER_SOCK);
    assert.is(forbidden.code, exitCode('NO_PERMISSION'), forbidden.stderr);
    assert.match(forbidden.stderr, `[CONTROL_FORBIDDEN] daemon refused '${cmd}': '${cmd}' needs the operator role; it is served on operator.sock (group icosfl-operators, or root); coordinator.sock is the viewer socket and answers status, agents, rounds, ping`);
  }
  assert.is((await status()).paused, null, 'nothing was paused');
  const refusal = service!.logs.find((l) => l.event === 'control-forbidden');
  assert.equal([refusal?.component, refusal?.cmd, refusal?.role], ['control', 'pause', 'operator']);
});

test('without a role nothing answers: status is refused by the viewer socket, exit 77', async () => {
  grant(VIEWER_SOCK, false);
  const r = await asUser('status', '--socket', VIEWER_SOCK);
  assert.is(r.code, exitCode('NO_PERMISSION'), r.stderr);
  assert.match(r.stderr, `[CONTROL_PERMISSION_DENIED] cannot open icosfl-coordinator's control socket ${VIEWER_SOCK}: permission denied (EACCES); run as root or as a member of group icosfl-viewers`);
});

test('an operator pauses: the round in progress finishes, no new one is announced, status says paused', async () => {
  grant(OPERATOR_SOCK, true);
  const announcements = await fakeAgent((await service!.waitForLog('coordinator ready')).broker as string);
  await waitFor(() => announcements.length > 0, 15_000, 'round 1 announced');
  const paused = await asUser('pause', '--socket', OPERATOR_SOCK);
  assert.is(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /^paused: no new round is announced; round 1 in progress runs to its end/);
  const again = await asUser('pause', '--socket', OPERATOR_SOCK, '--json');
  assert.is((JSON.parse(again.stdout) as { changed: boolean }).changed, false, 'pausing twice changes nothing');
  // Nobody answers round 1: it is abandoned at its deadline, as it would be unpaused.
  await waitFor(async () => (await status()).roundsDone === 1, 15_000, 'round 1 to end', 200);
  // Past the interval after it, with the agent online: the runner's ticks would have announced round 2.
  const ended = await status();
  await waitFor(async () => Date.now() > (ended.nextRoundAt ?? Infinity) + 1000, 10_000, 'the next round to be overdue', 100);
  const st = await status();
  assert.is(st.round, null);
  assert.is(st.agents.eligible, 1);
  assert.ok(st.paused !== null && st.paused.finishing === null, JSON.stringify(st.paused));
  assert.is(announcements.filter((a) => a.round > 1).length, 0, 'no round after the pause');
  const text = await runCoordinatorCli(['status', '--socket', VIEWER_SOCK]);
  assert.match(text.stdout, /^round\s+none; paused$/m);
  assert.match(text.stdout, /^paused\s+\S+ ago; no new round until `icosfl-coordinator resume`$/m, text.stdout);
});

test('a pause survives a restart; resume (as root, on the operator socket) announces the next round', async () => {
  service!.proc.kill('SIGTERM');
  assert.is((await within(service!.exited, 10_000, 'the coordinator to stop')).code, 0);
  await startService();
  const st = await status();
  assert.ok(st.paused, 'still paused after the restart');
  const announcements = await fakeAgent((await service!.waitForLog('coordinator ready')).broker as string);
  const resumed = await runCoordinatorCli(['resume', '--config', config]);
  assert.is(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^resumed: rounds are announced again/);
  await waitFor(() => announcements.some((a) => a.round === 2), 15_000, 'round 2 announced after resume');
  assert.is((await status()).paused, null);
});

test('admin work is on the files: nobody cannot enrol an agent, root can', async () => {
  const key = 'ed25519:' + Buffer.alloc(32, 7).toString('base64');
  // Not root: this user owns the state directory; taking its write bit models not being its owner.
  const state = join(dir, 'state');
  if (!AS_ROOT) chmodSync(state, 0o500);
  const denied = await asUser('agents', 'enroll', 'agent-9', key, '--config', config);
  if (!AS_ROOT) chmodSync(state, 0o700);
  assert.ok(denied.code !== 0, 'an unprivileged enrol must fail');
  assert.match(denied.stderr, /permission denied \(EACCES\)/);
  const root = await runCoordinatorCli(['agents', 'enroll', 'agent-9', key, '--config', config]);
  assert.is(root.code, 0, root.stderr);
  assert.match(root.stdout, /agent agent-9 enrolled/);
  console.log(`[roles] unprivileged enrol: exit ${denied.code}, ${denied.stderr.trim().split('\n')[0]}`);
});

test.run();
