import { defineCommand } from '../../common/cli.js';
import type { MessengerStats } from '../../common/transport/messenger.js';
import { SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { bytes, duration, keyValues, relative, score } from '../control-format.js';
import { coordinatorRequest } from '../control-socket.js';
import type { RoundSummary } from '../round/state.js';
import type { RoundView } from '../service-status.js';

/** The service's status answer (service-status.ts statusAnswer), as the CLI reads it. */
export interface StatusAnswer {
  pid: number;
  ready: boolean;
  uptimeS: number;
  configFile: string | null;
  stateDir: string;
  socket: string;
  federation: { id: string; keyId: string; keyEpoch?: number; nextKey?: { epoch: number; keyId: string; holders: number } | null; codec: string; configHash: string; minAgents: number; sessions: number };
  broker: { url: string; embedded: boolean; port: number | null; connected: boolean; connectedAt: string | null; reconnects: number; lastError: string | null; clients: number | null } | null;
  round: RoundView | null;
  nextRoundAt: number | null;
  session: { session: number; startedAt: number; completedSteps: number; fedavgRounds: number; ridge: boolean } | null;
  sessionsDone: number;
  done: boolean;
  paused: { since: number; finishing: number | null } | null;
  agents: { online: number; eligible: number; known: number };
  lastRounds: RoundSummary[];
  roundsDone: number;
  rejected: Record<string, number>;
  messenger: MessengerStats | null;
}

const counts = (r: Record<string, number | undefined>) => {
  const parts = Object.entries(r).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`);
  return parts.length ? parts.join(', ') : 'none';
};

export function formatStatus(st: StatusAnswer, now = Date.now()): string {
  const rows: [string, string][] = [];
  rows.push(['coordinator', `pid ${st.pid}, up ${duration(st.uptimeS)}, ${st.ready ? 'ready' : 'starting'}`]);
  rows.push(['config', st.configFile ?? 'defaults (no file)']);
  rows.push(['federation', `${st.federation.id}, codec ${st.federation.codec}${st.federation.keyId ? `, key epoch ${st.federation.keyEpoch ?? 0} (${st.federation.keyId})` : ''}, model ${st.federation.configHash.slice(0, 12)}`]);
  const nk = st.federation.nextKey;
  if (nk) rows.push(['next key', `epoch ${nk.epoch} (${nk.keyId}): held by ${nk.holders} of the ${st.federation.minAgents} agents online the switch needs; rounds switch at the next session`]);
  const b = st.broker;
  rows.push(['broker', b ? `${b.url}${b.embedded ? ` (embedded, port ${b.port}, ${b.clients ?? 0} clients)` : ''}, ${b.connected ? 'connected' : 'DISCONNECTED'}${b.reconnects ? `, ${b.reconnects} reconnects` : ''}${b.lastError && !b.connected ? ` (${b.lastError})` : ''}` : 'not connected yet']);
  const r = st.round;
  if (r) {
    const step = r.phase === 'fedavg' && st.session ? ` ${r.step}/${st.session.fedavgRounds}` : '';
    const progress = r.status === 'collecting' ? `${r.updates}/${r.expected} updates, deadline ${relative(r.deadline, now)}` : r.status === 'acking' ? `${r.acks} acknowledgements, deadline ${relative(r.ackDeadline, now)}` : `${r.updates} updates`;
    rows.push(['round', `${r.round} (session ${r.session}, ${r.phase}${step}): ${r.status}, ${progress}`]);
  } else if (st.done) {
    rows.push(['round', 'none: every configured session ran']);
  } else if (st.paused) {
    rows.push(['round', 'none; paused']);
  } else {
    const quorum = st.agents.eligible < st.federation.minAgents ? `waiting for agents (${st.agents.eligible} of ${st.federation.minAgents} ready)` : `next ${relative(st.nextRoundAt, now)}`;
    rows.push(['round', `none; ${quorum}`]);
  }
  if (st.paused) rows.push(['paused', `${relative(st.paused.since, now)}${st.paused.finishing !== null ? `; round ${st.paused.finishing} finishes first` : ''}; no new round until \`icosfl-coordinator resume\``]);
  rows.push(['sessions', `${st.sessionsDone} done${st.federation.sessions ? ` of ${st.federation.sessions}` : ' (runs forever)'}${st.session ? `; session ${st.session.session}: ${st.session.completedSteps} FedAvg rounds done` : ''}`]);
  rows.push(['agents', `${st.agents.online} online (${st.agents.eligible} ready), ${st.agents.known} known; quorum ${st.federation.minAgents}`]);
  rows.push(['rounds', `${st.roundsDone} finished`]);
  for (const s of st.lastRounds) {
    rows.push([`  ${s.round}`, `${s.phase}${s.phase === 'fedavg' ? ` ${s.step}` : ''} ${s.outcome}, ${s.participants}/${s.expected} agents, score ${score(s.score)}${s.reason ? ` (${s.reason})` : ''}`]);
  }
  rows.push(['rejected', counts(st.rejected)]);
  const m = st.messenger;
  if (m) {
    rows.push(['messages', `in ${counts(m.received)} (${bytes(m.bytesIn)}); out ${counts(m.sent)} (${bytes(m.bytesOut)}); duplicates ${m.duplicates}`]);
    rows.push(['  refused', counts(m.rejected)]);
  }
  return keyValues(rows);
}

const command = defineCommand({
  summary: 'ask the running coordinator: federation, broker, current round, agents online, last rounds, rejected messages',
  flags: SOCKET_FLAGS,
  async run({ values }) {
    const result = (await coordinatorRequest(socketOf(values), { cmd: 'status' })) as StatusAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatStatus(result));
    return 0;
  },
});
export default command;
