import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ackFor, type Message, type Presence } from '../../../common/protocol/messages.js';
import { StorageHealth } from '../../../common/storage-health.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { abandonReason, createCoordinatorMetrics } from '../../../coordinator/http/metrics.js';
import { MemoryJournal } from '../../../coordinator/round/journal.js';
import { RoundRunner } from '../../../coordinator/round/runner.js';
import { plaintextStrategy } from '../../../coordinator/strategy/aggregation.js';
import { waitFor } from '../../helpers/wait.js';
import { Driver, testSettings, TIMING } from '../round/driver.js';

// The coordinator's registry against a real round runner and messenger over the in-memory bus:
// two agents play a ridge round and a FedAvg round, then one of them leaves the next round
// below quorum; the clock is the test's, so every duration is known exactly.

const logger = pino({ level: 'silent' });

/** `name{labels} value` lines of a text exposition, keyed by `name{labels}`. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function value(s: Map<string, number>, key: string): number {
  const v = s.get(key);
  if (v === undefined) throw new Error(`${key} is not exported; exported: ${[...s.keys()].filter((k) => k.startsWith('icosfl_coordinator_') && !k.includes('process') && !k.includes('nodejs')).join(', ')}`);
  return v;
}

test('rounds, stages, participants, bytes, rejections, agents and the pooled loss as the runner saw them', async () => {
  const settings = testSettings({ sessions: 0 });
  let now = 1_000_000;
  const clock = () => now;
  const bus = new MemoryBus();
  const transport = await bus.connect({ clientId: 'coordinator', logger });
  const messenger = new Messenger({ transport, federation: 't', accept: new Set(['update', 'ack', 'presence']), logger, now: clock });
  const runner = new RoundRunner({ settings, messenger, journal: new MemoryJournal(), strategy: plaintextStrategy(), logger, clock, tickMs: 3_600_000 });
  const storage = new StorageHealth();
  const registry = createCoordinatorMetrics({
    runner,
    settings,
    federation: { id: 't', keyId: 'key-1' },
    messenger: () => messenger.stats(),
    broker: () => ({ transport: transport.status(), embedded: null }),
    storage,
    clock,
  });
  await runner.start();
  const agentTransport = await bus.connect({ clientId: 'agents', logger });
  const agents = new Messenger({ transport: agentTransport, federation: 't', accept: new Set(['announce', 'global']), logger, now: clock });
  try {
    await play();
  } finally {
    await runner.stop();
    messenger.close();
    agents.close();
    await agentTransport.close();
    await transport.close();
  }

  async function play(): Promise<void> {
    for (const f of [messenger.topics.updateFilter, messenger.topics.ackFilter, messenger.topics.presenceFilter]) await transport.subscribe(f);

    const handled = () => Object.values(messenger.stats().received).reduce((a, n) => a + n, 0);
    const send = async (m: Message) => {
      const before = handled();
      await agents.send(m);
      await waitFor(() => handled() > before, 5000, `the coordinator to take the ${m.type}`);
    };
    const presence = (agent: string): Presence => ({ type: 'presence', federation: 't', agent, state: 'online', at: now });
    const waitStatus = (round: number, status: string) => waitFor(() => runner.state.current?.round === round && runner.state.current.status === status, 5000, `round ${round} ${status}`);
    const ackAll = async (round: number, loss: (agent: string) => number | undefined) => {
      const header = runner.state.lastPublished!.header;
      assert.is(header.round, round);
      for (const a of ['a', 'b']) {
        const l = loss(a);
        await send(ackFor(header, a, { ok: true, ...(l !== undefined ? { loss: l } : {}) }));
      }
    };

    await send(presence('a'));
    now += 10;
    await send(presence('b'));
    assert.is(runner.state.current?.round, 1, 'the ridge round is announced once both are online');
    // Round 1 (ridge): collecting 200 ms, the sum and publish in no clock time, acking 300 ms.
    now += 100;
    await send(new Driver(settings, { state: runner.state }).updateMessage('a'));
    now += 100;
    await send(new Driver(settings, { state: runner.state }).updateMessage('b'));
    await waitStatus(1, 'acking');
    now += 300;
    await ackAll(1, () => undefined);
    await waitFor(() => runner.state.history.length === 1, 5000, 'round 1 to close');
    // Round 2 (FedAvg step 1), announced at the next tick after the interval.
    now += TIMING.roundIntervalMs;
    await runner.dispatch({ type: 'tick', now });
    assert.is(runner.state.current?.phase, 'fedavg');
    now += 50;
    await send(new Driver(settings, { state: runner.state }).updateMessage('a', { baseLoss: 1.2 }));
    await send(new Driver(settings, { state: runner.state }).updateMessage('b', { baseLoss: 1.1 }));
    await waitStatus(2, 'acking');
    now += 100;
    await ackAll(2, (a) => (a === 'a' ? 0.8 : 0.6));
    await waitFor(() => runner.state.history.length === 2, 5000, 'round 2 to close');
    // Round 3: only a's update, then the deadline: abandoned below quorum.
    now += TIMING.roundIntervalMs;
    await runner.dispatch({ type: 'tick', now });
    assert.is(runner.state.current?.round, 3);
    await send(new Driver(settings, { state: runner.state }).updateMessage('a'));
    // A malformed payload on an update topic (wire) and a late update (round).
    await agentTransport.publish(`${agents.topics.prefix}/update/a`, new Uint8Array([1, 2, 3, 4]), { qos: 1 });
    await waitFor(() => (messenger.stats().rejected['truncated'] ?? 0) + (messenger.stats().rejected['bad-magic'] ?? 0) > 0, 5000, 'the wire rejection');
    now += TIMING.roundTimeoutMs;
    await runner.dispatch({ type: 'tick', now });
    await waitFor(() => runner.state.history.length === 3, 5000, 'round 3 to be abandoned');
    const [r1, r2, r3] = runner.state.history;
    assert.is(r3!.outcome, 'abandoned');

    const text = await registry.metrics();
    const s = samples(text);
    assert.is(value(s, 'icosfl_coordinator_rounds_total{phase="ridge",outcome="completed"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_rounds_total{phase="fedavg",outcome="completed"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_rounds_total{phase="fedavg",outcome="abandoned"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_rounds_total{phase="final",outcome="completed"}'), 0, 'every label combination is exported from the start');
    assert.is(value(s, 'icosfl_coordinator_rounds_abandoned_total{reason="below_quorum"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_rounds_abandoned_total{reason="aggregation_failed"}'), 0);
    // Stages, from the test's clock: round 1 collected 200 ms and acked 300 ms, round 2 50 and 100, round 3 collected 1000 ms.
    assert.is(value(s, 'icosfl_coordinator_round_stage_duration_seconds_count{stage="collecting"}'), 3);
    assert.ok(Math.abs(value(s, 'icosfl_coordinator_round_stage_duration_seconds_sum{stage="collecting"}') - (0.2 + 0.05 + TIMING.roundTimeoutMs / 1000)) < 1e-9);
    assert.ok(Math.abs(value(s, 'icosfl_coordinator_round_stage_duration_seconds_sum{stage="acking"}') - 0.4) < 1e-9);
    assert.is(value(s, 'icosfl_coordinator_round_stage_duration_seconds_count{stage="aggregating"}'), 2);
    assert.ok(Math.abs(value(s, 'icosfl_coordinator_round_duration_seconds_sum{phase="ridge",outcome="completed"}') - 0.5) < 1e-9);
    assert.is(value(s, 'icosfl_coordinator_round_participants_count'), 3);
    assert.is(value(s, 'icosfl_coordinator_round_participants_sum'), 5);
    assert.is(value(s, 'icosfl_coordinator_round_participants_bucket{le="1"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_round_bytes_total{direction="in"}'), r1!.bytesIn + r2!.bytesIn + r3!.bytesIn);
    assert.is(value(s, 'icosfl_coordinator_round_bytes_total{direction="out"}'), r1!.bytesOut + r2!.bytesOut);
    assert.ok(r1!.bytesIn > 0 && r1!.bytesOut > 0);
    assert.is(value(s, 'icosfl_coordinator_last_round'), 3);
    assert.is(value(s, 'icosfl_coordinator_last_round_completed'), 0);
    assert.is(value(s, 'icosfl_coordinator_last_round_participants'), 1);
    // The pooled loss of the newest scored FedAvg round, between the two agents' reports.
    assert.is(value(s, 'icosfl_coordinator_validation_relative_loss'), r2!.score);
    assert.ok(r2!.score! > 0.6 && r2!.score! < 0.8, `score ${r2!.score}`);
    // Messages: the wire rejection is the messenger's; both agents online, b missed round 3.
    const wire = [...s.entries()].filter(([k]) => k.startsWith('icosfl_coordinator_messages_rejected_total{stage="wire"')).reduce((a, [, v]) => a + v, 0);
    assert.is(wire, 1);
    assert.is(value(s, 'icosfl_coordinator_messages_rejected_total{stage="wire",reason="bad-signature"}'), 0, 'every known reason from the start');
    assert.is(value(s, 'icosfl_coordinator_messages_rejected_total{stage="round",reason="late"}'), 0);
    assert.is(value(s, 'icosfl_coordinator_message_bytes_total{direction="in"}'), messenger.stats().bytesIn);
    assert.is(value(s, 'icosfl_coordinator_messages_total{direction="in",type="update"}'), 5);
    assert.is(value(s, 'icosfl_coordinator_messages_total{direction="out",type="global"}'), 2);
    assert.is(value(s, 'icosfl_coordinator_agents{state="known"}'), 2);
    assert.is(value(s, 'icosfl_coordinator_agents{state="online"}'), 2);
    assert.is(value(s, 'icosfl_coordinator_agent_online{agent="b"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_agent_rounds_missed{agent="a"}'), 0);
    assert.is(value(s, 'icosfl_coordinator_agent_rounds_missed{agent="b"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_quorum'), 2);
    assert.is(value(s, 'icosfl_coordinator_session'), 1);
    assert.is(value(s, 'icosfl_coordinator_sessions_completed_total'), 0);
    assert.is(value(s, 'icosfl_coordinator_info{federation="t",key_id="key-1",codec="plaintext",config_hash="' + settings.configHash + '",protocol="1"}'), 1);
    assert.is(value(s, 'icosfl_coordinator_broker_connected'), 1);
    assert.is(value(s, 'icosfl_coordinator_storage_degraded'), 0);
    assert.is(value(s, 'icosfl_coordinator_storage_write_failures_total{kind="journal"}'), 0);
    assert.ok(s.has('icosfl_coordinator_process_cpu_seconds_total'), "prom-client's process metrics, prefixed");
    // Nothing of one agent's data: no per-agent loss, sample count or byte figure.
    for (const line of text.split('\n').filter((l) => l.includes('agent="'))) assert.match(line, /^icosfl_coordinator_agent_(online|last_seen_timestamp_seconds|rounds_missed)\{/);

    // promtool lints our exposition (names, units, help texts) as Prometheus' own tooling sees it;
    // prom-client's nodejs_* gauges are its naming (e.g. nodejs_active_handles_total), not ours.
    const ours = text.split('\n').filter((l) => !l.includes('icosfl_coordinator_nodejs_')).join('\n');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: ours, encoding: 'utf8' });
    assert.is(lint.error, undefined, `promtool: ${lint.error?.message} (Debian package prometheus)`);
    assert.is(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);

  }
});

test('an abandoned round is labelled by why (the reducer texts)', () => {
  assert.is(abandonReason('1 of the 2 updates the quorum needs arrived by the deadline'), 'below_quorum');
  assert.is(abandonReason('aggregation failed: only 1 agents contributed; the round needs 2'), 'aggregation_failed');
  assert.is(abandonReason(null), 'other');
});

test.run();
