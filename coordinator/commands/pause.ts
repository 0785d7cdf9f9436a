import { defineCommand } from '../../common/cli.js';
import { OPERATOR_SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { relative } from '../control-format.js';
import { coordinatorRequest } from '../control-socket.js';

/** The answer of the operator socket's `pause` and `resume` (service.ts). */
export interface PauseAnswer {
  paused: { since: number; finishing: number | null } | null;
  /** false: it already was so. */
  changed: boolean;
}

export function formatPause(a: PauseAnswer, now = Date.now()): string {
  if (!a.paused) return a.changed ? 'resumed: rounds are announced again\n' : 'not paused: rounds are being announced\n';
  const finishing = a.paused.finishing !== null ? `; round ${a.paused.finishing} in progress runs to its end` : '';
  return `${a.changed ? 'paused' : `already paused (${relative(a.paused.since, now)})`}: no new round is announced${finishing}; \`icosfl-coordinator resume\` goes on\n`;
}

/** `pause` and `resume`: one request to the operator socket, the same output. */
export function pauseCommand(what: 'pause' | 'resume', summary: string) {
  return defineCommand({
    summary,
    flags: OPERATOR_SOCKET_FLAGS,
    async run({ values }) {
      const result = (await coordinatorRequest(socketOf(values, 'operator'), { cmd: what }, 10_000, 'operator')) as PauseAnswer;
      process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatPause(result));
      return 0;
    },
  });
}

export default pauseCommand('pause', 'operator: stop announcing new rounds (the round in progress finishes); it stays paused across restarts until `resume`');
