import { defineCommand } from '../../common/cli.js';
import { SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { bytes, score, table } from '../control-format.js';
import { coordinatorRequest } from '../control-socket.js';
import type { RoundSummary } from '../round/state.js';

export interface RoundsAnswer {
  rounds: RoundSummary[];
  total: number;
}

const DEFAULT_LIMIT = 20;

export function formatRounds(a: RoundsAnswer): string {
  if (a.rounds.length === 0) return 'no round has finished yet\n';
  const rows = a.rounds.map((r) => [
    String(r.round),
    String(r.session),
    r.phase === 'fedavg' ? `fedavg ${r.step}` : r.phase,
    r.outcome + (r.reason ? `: ${r.reason}` : ''),
    `${r.participants}/${r.expected}`,
    String(r.acks),
    bytes(r.bytesIn),
    bytes(r.bytesOut),
    ((r.closedAt - r.announcedAt) / 1000).toFixed(1),
    score(r.score),
  ]);
  const shown = a.rounds.length < a.total ? `(the last ${a.rounds.length} of ${a.total} rounds; --limit N shows more)\n` : '';
  return table(['ROUND', 'SESSION', 'PHASE/STEP', 'OUTCOME', 'AGENTS', 'ACKS', 'BYTES IN', 'BYTES OUT', 'SECONDS', 'SCORE VS PERSISTENCE'], rows, new Set([0, 1, 4, 5, 6, 7, 8])) + shown;
}

function parseLimit(raw: unknown): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < 1) throw new RangeError(`--limit must be a positive integer, got '${String(raw)}'`);
  return n;
}

const command = defineCommand({
  summary: `ask the running coordinator for its finished rounds, newest last (default the last ${DEFAULT_LIMIT}): outcome, agents, bytes, seconds, score vs persistence`,
  flags: { ...SOCKET_FLAGS, limit: { type: 'string', value: 'N', description: 'the newest N finished rounds', default: String(DEFAULT_LIMIT) } },
  async run({ values }) {
    const limit = parseLimit(values.limit);
    const result = (await coordinatorRequest(socketOf(values), { cmd: 'rounds', limit })) as RoundsAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatRounds(result));
    return 0;
  },
});
export default command;
