import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_FEDERATION_MODEL } from '../../../common/protocol/federation-model.js';
import { formatAgents } from '../../../coordinator/commands/agents.js';
import { formatRounds } from '../../../coordinator/commands/rounds.js';
import { initialState, makeSettings, type AgentRecord, type CoordinatorState, type RoundSummary } from '../../../coordinator/round/state.js';
import { agentsAnswer, roundsAnswer, statusLine } from '../../../coordinator/service-status.js';

// The control answers and their text forms, from a hand-made round state (no service).
const NOW = 1_700_000_000_000;
const settings = makeSettings({ federation: 'f', codec: 'ckks', keyId: 'k', model: { ...DEFAULT_FEDERATION_MODEL }, minAgents: 2, maxRoundSamples: 1 << 20 });

function agent(patch: Partial<AgentRecord>): AgentRecord {
  return { firstSeen: NOW - 60_000, lastSeen: NOW - 1000, state: 'online', reason: null, windows: 10, lastRound: null, installed: null, rounds: 0, lastError: null, ...patch };
}

function summary(round: number, patch: Partial<RoundSummary> = {}): RoundSummary {
  return { round, session: 1, phase: 'fedavg', step: round, outcome: 'completed', reason: null, expected: 2, participants: 2, acks: 2, clients: 2, totalSamples: 40, bytesIn: 2048, bytesOut: 4096, announcedAt: NOW - 5000, closedAt: NOW - 2500, score: 0.9, ...patch };
}

const state: CoordinatorState = {
  ...initialState(settings, NOW),
  agents: {
    b: agent({ state: 'offline', lastSeen: NOW - 500 }),
    a: agent({ rounds: 3, lastRound: 7, installed: 7 }),
    c: agent({ lastSeen: NOW - 200_000 }),
  },
  history: [summary(1), summary(2, { outcome: 'abandoned', reason: 'quorum', score: null }), summary(3)],
};

test('agents: sorted by id; online means heard from within the presence timeout and not offline', () => {
  const a = agentsAnswer(state, settings, NOW);
  assert.equal(a.agents.map((x) => [x.id, x.online]), [['a', true], ['b', false], ['c', false]]);
  assert.is(a.presenceTimeoutMs, 90_000);
  const text = formatAgents(a, NOW);
  assert.match(text, /^AGENT\s+STATE\s+ONLINE\s+FIRST SEEN\s+LAST SEEN\s+LAST ROUND\s+INSTALLED\s+ROUNDS\s+LAST ERROR$/m);
  assert.match(text, /^a\s+online\s+yes\s+1m0s ago\s+1s ago\s+7\s+7\s+3\s+-$/m);
});

test('rounds: newest last, limited; a bad limit is a RangeError', () => {
  assert.equal(roundsAnswer(state, 2).rounds.map((r) => r.round), [2, 3]);
  assert.is(roundsAnswer(state, undefined).rounds.length, 3);
  assert.is(roundsAnswer(state, 2).total, 3);
  for (const bad of [0, -1, 1.5, '3']) assert.throws(() => roundsAnswer(state, bad), RangeError);
  const text = formatRounds(roundsAnswer(state, 2));
  assert.match(text, /^ROUND\s+SESSION\s+PHASE\/STEP\s+OUTCOME\s+AGENTS\s+ACKS\s+BYTES IN\s+BYTES OUT\s+SECONDS\s+SCORE VS PERSISTENCE$/m);
  assert.match(text, /^\s*3\s+1\s+fedavg 3\s+completed\s+2\/2\s+2\s+2\.0 KiB\s+4\.0 KiB\s+2\.5\s+0\.900 \(-10\.0%\)$/m);
  assert.match(text, /abandoned: quorum/);
  assert.match(text, /the last 2 of 3 rounds/);
});

test('the STATUS= line says what the coordinator waits for', () => {
  assert.is(statusLine(state, settings, NOW), 'waiting for agents: 1 of the 2 a round needs are ready; 1 of 3 agents online');
  const two = { ...state, agents: { ...state.agents, d: agent({}) }, nextAt: NOW + 2000 };
  assert.is(statusLine(two, settings, NOW), 'next round in 2 s; 2 of 4 agents online');
  assert.match(statusLine({ ...two, done: true, sessionsDone: 1 }, settings, NOW), /^done: 1 session\(s\) ran/);
});

test.run();
