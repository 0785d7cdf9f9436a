import { defineCommand, type CommandGroup } from '../../common/cli.js';
import { writeOutputFile } from '../../common/output-file.js';
import { CONFIG_FLAGS } from '../config/flags.js';
import { SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { bytes, score, table } from '../control-format.js';
import { coordinatorRequest } from '../control-socket.js';
import type { RoundSummary } from '../round/state.js';
import { EXPORT_FORMATS, formatExport, type ExportFormat } from '../rounds-export.js';

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

const show = defineCommand({
  summary: `ask the running coordinator for its finished rounds, newest last (default the last ${DEFAULT_LIMIT}): outcome, agents, bytes, seconds, score vs persistence`,
  flags: { ...SOCKET_FLAGS, limit: { type: 'string', value: 'N', description: 'the newest N finished rounds', default: String(DEFAULT_LIMIT) } },
  async run({ values }) {
    const limit = parseLimit(values.limit);
    const result = (await coordinatorRequest(socketOf(values), { cmd: 'rounds', limit })) as RoundsAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatRounds(result));
    return 0;
  },
});

function parseFormat(raw: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(raw)) throw new RangeError(`--format must be ${EXPORT_FORMATS.join(' or ')}, got '${raw}'`);
  return raw as ExportFormat;
}

const exportRounds = defineCommand({
  summary: 'write every finished round the running coordinator keeps, with every field `rounds` shows, as CSV or JSON (to stdout, or --out FILE)',
  flags: {
    ...CONFIG_FLAGS,
    socket: SOCKET_FLAGS.socket,
    format: { type: 'string', value: 'csv|json', description: 'csv: a header row and one row per round (RFC 4180); json: the rounds as the control socket answers them', default: 'csv' },
    out: { type: 'string', value: 'FILE', description: 'write to FILE (replaced whole, never left half-written) instead of stdout', defaultText: 'stdout' },
  },
  notes: () => 'Asks the running service over its control socket (exit 69 when none runs); the rounds are the ones it keeps in its state, oldest first.',
  async run({ values }) {
    const format = parseFormat(values.format);
    const socket = socketOf(values);
    const status = (await coordinatorRequest(socket, { cmd: 'status' })) as { federation: { id: string } };
    const answer = (await coordinatorRequest(socket, { cmd: 'rounds' })) as RoundsAnswer;
    const text = formatExport(format, { federation: status.federation.id, exportedAt: Date.now(), total: answer.total, rounds: answer.rounds });
    if (values.out === undefined) {
      process.stdout.write(text);
    } else {
      writeOutputFile('--out', values.out, text);
      process.stderr.write(`exported ${answer.rounds.length} rounds of federation ${status.federation.id} to ${values.out} (${format})\n`);
    }
    return 0;
  },
});

const group: CommandGroup = {
  summary: show.summary,
  default: show,
  subcommands: { export: exportRounds },
};
export default group;
