import { defineCommand } from '../../common/cli.js';
import { SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { relative, table } from '../control-format.js';
import { coordinatorRequest } from '../control-socket.js';
import type { AgentView } from '../service-status.js';

export interface AgentsAnswer {
  agents: AgentView[];
  presenceTimeoutMs: number;
}

export function formatAgents(a: AgentsAnswer, now = Date.now()): string {
  if (a.agents.length === 0) return 'no agent has been heard from yet\n';
  const rows = a.agents.map((x) => [
    x.id,
    x.state + (x.reason ? ` (${x.reason})` : ''),
    x.online ? 'yes' : 'no',
    relative(x.firstSeen, now),
    relative(x.lastSeen, now),
    x.lastRound === null ? '-' : String(x.lastRound),
    x.installed === null ? '-' : String(x.installed),
    String(x.rounds),
    x.lastError ?? '-',
  ]);
  return table(['AGENT', 'STATE', 'ONLINE', 'FIRST SEEN', 'LAST SEEN', 'LAST ROUND', 'INSTALLED', 'ROUNDS', 'LAST ERROR'], rows, new Set([5, 6, 7]));
}

const command = defineCommand({
  summary: 'ask the running coordinator which agents it knows: state, online, first/last seen, last round, installed global, rounds, last error',
  flags: SOCKET_FLAGS,
  async run({ values }) {
    const result = (await coordinatorRequest(socketOf(values), { cmd: 'agents' })) as AgentsAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatAgents(result));
    return 0;
  },
});
export default command;
