// Differential privacy through the real round code over the in-memory transport: (a) a whole
// CKKS federation with DP on every agent — a third party holding the agent key decrypts each
// update and finds weight 1, the noise at σ·C around the round's base, the global their plain
// mean, and each agent's ε where the accountant puts it; (b) one agent (real client, participant
// and accountant file) driven round by round: it contributes until its budget would be passed,
// then withholds, and a restart neither resets the spent budget nor starts a session.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, generateFederation } from '../../../common/crypto/index.js';
import { combinedNoiseMultiplier } from '../../../common/privacy/losses.js';
import { PrivacyAccountant } from '../../../common/privacy/accountant.js';
import { modelConfigHash, modelParamCount, parseFederationModel, ridgePayloadLength, type FederationModel } from '../../../common/protocol/federation-model.js';
import type { Announce, Message, Presence, Update } from '../../../common/protocol/messages.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { Messenger } from '../../../common/transport/messenger.js';
import { FederationClient } from '../../../agent/federation/client.js';
import { createEngines } from '../../../agent/federation/engines.js';
import { plaintextCodec } from '../../../agent/federation/codec.js';
import { Participant, type ParticipantData } from '../../../agent/federation/participant.js';
import { fileAccountantStore, PRIVACY_STATE_FILE, UpdatePrivacy, type PrivacySettings } from '../../../agent/federation/privacy.js';
import { buildWindows, chronologicalSplit, sliceWindows } from '../../../agent/trainer/windows.js';
import { markGaps, readClientCsv } from '../../../simulate/csv.js';
import { runInProcessFederation } from '../../../simulate/federation.js';
import { METRICS, TRACES } from '../../helpers/federation-cluster.js';
import { checkFedAvg, FederationObserver } from '../../helpers/federation-observer.js';
import { tempDir } from '../../helpers/paths.js';
import { exitAfter, waitFor } from '../../helpers/wait.js';

exitAfter(170_000, 'federation/privacy.test');
const tmp = tempDir('icosfl-dp-');
test.after(() => tmp.cleanup());

const MODEL: FederationModel = parseFederationModel({ metrics: METRICS, rounds: 2, localEpochs: 1, fineTuneEpochs: 1, ridgeFeatures: 16 });
const DP: PrivacySettings = { enabled: true, noise_multiplier: 2, clip_norm: 0.5, ridge_clip_norm: 0.5, delta: 1e-5, epsilon_budget: 1000, sampling_rate: 1, loss_noise_multiplier: 4, loss_clip: 2 };
const epsAfter = (n: number) => new PrivacyAccountant([{ samplingRate: 1, noiseMultiplier: combinedNoiseMultiplier(DP.noise_multiplier, DP.loss_noise_multiplier), steps: n }]).spent(DP.delta).epsilon;

function agentData(file: string): ParticipantData {
  const { series } = markGaps(readClientCsv(join(TRACES, file), METRICS), MODEL.lookback + MODEL.horizon);
  const C = METRICS.length;
  const all = buildWindows(series.values.subarray(0, Math.floor((series.values.length / C) * 0.8) * C), C, MODEL.lookback, MODEL.horizon);
  const { train, validation } = chronologicalSplit(sliceWindows(all, all.n - MODEL.maxWindows, all.n), MODEL.validationFraction);
  return { sessionWindows: () => ({ train, validation }) };
}
const FILES = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort();

/** A pino logger whose lines the test reads back. */
function capturingLogger(level = 'info'): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); done(); } });
  return { logger: pino({ level }, stream), lines };
}

test('a CKKS federation with DP: weight 1, noise σ·C around the base, the global their mean, ε as accounted', async () => {
  const keys = await generateFederation({ federationId: 'dp', maxRoundSamples: 1024 });
  const bus = new MemoryBus();
  const { logger, lines } = capturingLogger();
  const observer = await FederationObserver.attach(await bus.connect({ clientId: 'observer', logger }), 'dp', logger);
  const agents = FILES.slice(0, 3).map((f, k) => ({ id: `agent-${k}`, data: agentData(f), seedOffset: 1000 * k }));
  const cipher = await AgentCipher.create(keys.agent);
  try {
    const fed = await runInProcessFederation({ model: MODEL, agents, keys, bus, logger, privacy: DP });
    fed.engines.dispose();
    assert.is(fed.history.length, 4, 'ridge, 2 FedAvg, final');
    assert.is(fed.models.size, 3, 'every agent installed a model');
    // Whether or not a pooled penalty solved the noised statistics, each agent has a ridge piece (its own fit stands in).
    for (const [id, fm] of fed.models) assert.ok(fm.ridge && fm.ridge.betas.length === 2, `${id} has a ridge model`);
    const P = modelParamCount(MODEL);
    const initial = createEngines(MODEL);
    const noise: number[] = [];
    for (const h of fed.history.filter((r) => r.phase !== 'final')) {
      const updates = observer.roundUpdates(h.round);
      assert.is(updates.size, 3, `round ${h.round}: one update per agent`);
      for (const u of updates.values()) assert.equal([u.header.samples, u.header.windows], [1, 1], 'DP updates claim weight 1 and 1 window');
      const check = checkFedAvg(cipher, updates, observer.roundGlobal(h.round), h.phase === 'ridge' ? ridgePayloadLength(MODEL) : P);
      assert.ok(check.maxAbsDiff < 1e-3, `round ${h.round}: global = plain mean of the updates (${check.maxAbsDiff})`);
      assert.is(check.totalSamples, 3);
      if (h.step === 1) for (const u of updates.values()) {
        const w = cipher.decryptAggregate(u.body, { paramCount: P }).weights;
        for (let i = 0; i < P; i++) noise.push(w[i]! - initial.initial[i]!);
      }
    }
    initial.dispose();
    // The validation losses leave noised and clipped to [0, loss_clip]: a baseLoss only where the
    // coordinator scores the initial model (step 1), one per acknowledgement, every ridge penalty's.
    const inRange = (x: unknown) => typeof x === 'number' && x >= 0 && x <= DP.loss_clip;
    for (const h of fed.history.filter((r) => r.phase === 'fedavg')) {
      for (const u of observer.roundUpdates(h.round).values()) {
        if (h.step === 1) assert.ok(inRange(u.header.baseLoss), `round ${h.round}: baseLoss ${u.header.baseLoss}`);
        else assert.is(u.header.baseLoss, undefined, `round ${h.round}: no baseLoss after step 1`);
      }
      const acks = observer.acks.get(h.round) ?? [];
      assert.ok(acks.length >= 3 && acks.every((a) => inRange(a.loss)), `round ${h.round}: acks ${JSON.stringify(acks.map((a) => a.loss))}`);
    }
    const ridge = fed.history.find((r) => r.phase === 'ridge')!;
    const ridgeAcks = observer.acks.get(ridge.round) ?? [];
    assert.ok(ridgeAcks.length >= 3 && ridgeAcks.every((a) => a.ridgeLosses!.flat().length === 12 && a.ridgeLosses!.flat().every(inRange)), 'ridge acks: 2 heads × 6 penalties, each noised into [0, L]');
    // Step 1 starts every agent from the seeded initial model: update − initial = clip(Δ) + noise,
    // and ‖clip(Δ)‖ ≤ C adds at most C²/P to the variance. 5 standard errors of a sample std.
    const mean = noise.reduce((a, b) => a + b, 0) / noise.length;
    const std = Math.sqrt(noise.reduce((a, b) => a + (b - mean) ** 2, 0) / noise.length);
    const want = DP.noise_multiplier * DP.clip_norm;
    const se = want / Math.sqrt(2 * noise.length);
    assert.ok(std > want - 5 * se && std < Math.sqrt(want ** 2 + DP.clip_norm ** 2 / P) + 5 * se, `noise std ${std}, want ${want} (± ${5 * se})`);
    for (const [id, p] of fed.privacy) {
      const st = p.status();
      assert.is(st.rounds_charged, 3, id);
      assert.ok(Math.abs(st.epsilon - epsAfter(3)) < 1e-12, `${id}: ε ${st.epsilon}`);
    }
    const released = lines.filter((l) => l.msg === 'differentially private update released');
    assert.is(released.length, 9, 'one info line per agent and contributed round');
    assert.ok(released.every((l) => typeof l.epsilon === 'number' && typeof l.epsilon_round === 'number' && l.delta === DP.delta));
  } finally {
    cipher.dispose();
    await observer.close();
  }
});

function announce(round: number, phase: 'ridge' | 'fedavg'): Announce {
  return {
    type: 'announce', federation: 'dp1', session: 1, round, phase, step: phase === 'ridge' ? 0 : round - 1, base: 0,
    deadline: Date.now() + 3_600_000, issuedAt: Date.now(), codec: 'plaintext', keyId: '', weightCap: 1000, model: MODEL, configHash: modelConfigHash(MODEL),
  };
}

test('an agent stops contributing when the next round would pass its budget, and a restart does not reset it', async () => {
  const stateDir = join(tmp.dir, 'agent');
  mkdirSync(stateDir);
  const settings: PrivacySettings = { ...DP, epsilon_budget: (epsAfter(3) + epsAfter(4)) / 2 };
  const bus = new MemoryBus();
  const silent = pino({ level: 'silent' });
  const coordinatorTransport = await bus.connect({ clientId: 'coordinator', logger: silent });
  const coordinator = new Messenger({ transport: coordinatorTransport, federation: 'dp1', accept: new Set(['update', 'ack', 'presence']), logger: silent });
  const seen: Message[] = [];
  coordinator.onMessage((m) => void seen.push(m));
  await coordinatorTransport.subscribe(coordinator.topics.updateFilter);
  await coordinatorTransport.subscribe(coordinator.topics.presenceFilter);
  const data = agentData(FILES[0]!);
  const engines = createEngines(MODEL);

  /** One daemon life: its own accountant (from the state file), participant and client. */
  async function startAgent() {
    const { logger, lines } = capturingLogger();
    const privacy = new UpdatePrivacy({ settings, store: fileAccountantStore(stateDir), logger });
    const participant = new Participant({ agent: 'edge-1', seedOffset: 0, engines: () => engines, codec: plaintextCodec(), data, logger, privacy });
    const transport = await bus.connect({ clientId: 'edge-1', logger });
    const messenger = new Messenger({ transport, federation: 'dp1', accept: new Set(['announce', 'global']), logger });
    const client = new FederationClient({ agent: 'edge-1', federation: 'dp1', transport, messenger, participant, logger, presenceEveryMs: 0 });
    await client.start();
    return {
      privacy, participant, lines,
      async stop() {
        await client.stop();
        messenger.close();
        await transport.close();
      },
    };
  }
  const updateFor = (round: number) => seen.find((m): m is Update => m.type === 'update' && m.round === round);
  const withholding = () => seen.filter((m): m is Presence => m.type === 'presence' && m.state === 'withholding');
  const play = async (round: number, phase: 'ridge' | 'fedavg') => coordinator.send(announce(round, phase));

  try {
    let agent = await startAgent();
    await play(1, 'ridge');
    await waitFor(() => updateFor(1) !== undefined, 60_000, 'update of round 1');
    await play(2, 'fedavg');
    await waitFor(() => updateFor(2) !== undefined, 60_000, 'update of round 2');
    assert.is(agent.privacy.status().rounds_charged, 2);
    assert.is(agent.lines.filter((l) => l.msg === 'differentially private update released').length, 2);
    await agent.stop();

    // Restart: the file says 2 rounds are spent; one more fits, the fourth does not.
    await play(3, 'fedavg'); // retained: the new daemon finds it on connecting
    agent = await startAgent();
    assert.is(agent.privacy.status().rounds_charged, 2, 'the spent budget survived the restart');
    await waitFor(() => updateFor(3) !== undefined, 60_000, 'update of round 3');
    await play(4, 'fedavg');
    await waitFor(() => withholding().length > 0, 60_000, 'withholding presence');
    assert.is(updateFor(4), undefined, 'no update once the budget would be passed');
    assert.match(withholding()[0]!.reason!, /^privacy budget spent: ε \d+\.\d+ of \d+\.\d+ \(δ 0\.00001\) after 3 rounds/);
    const st = agent.privacy.status();
    assert.equal([st.state, st.rounds_charged], ['budget-spent', 3]);
    assert.ok(Math.abs(st.epsilon - epsAfter(3)) < 1e-12);
    assert.ok(agent.lines.some((l) => l.msg === 'privacy budget spent; no more updates, forecasting with the current model'));
    await agent.stop();

    // Another restart: still spent, and the agent does not even begin the session (no training for it).
    const before = withholding().length;
    agent = await startAgent();
    await waitFor(() => withholding().length > before, 60_000, 'withholding after the restart');
    assert.is(agent.privacy.status().state, 'budget-spent');
    assert.is(agent.participant.session, undefined, 'no session begun: the agent keeps its current model');
    const file = JSON.parse(readFileSync(join(stateDir, PRIVACY_STATE_FILE), 'utf8')) as { history: unknown };
    assert.equal(file.history, [{ samplingRate: 1, noiseMultiplier: combinedNoiseMultiplier(DP.noise_multiplier, DP.loss_noise_multiplier), steps: 3 }]);
    await agent.stop();
  } finally {
    engines.dispose();
    coordinator.close();
    await coordinatorTransport.close();
  }
});

test.run();
