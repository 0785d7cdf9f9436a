import type { Command } from '../../common/cli.js';
import { parseSocketFlags, SOCKET_FLAGS_USAGE } from '../control-flags.js';
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

const command: Command = {
  summary: 'ask the running coordinator which agents it knows: state, online, first/last seen, last round, installed global, rounds, last error',
  usage: `agents ${SOCKET_FLAGS_USAGE}`,
  async run(argv) {
    const { socket, json } = parseSocketFlags(argv);
    const result = (await coordinatorRequest(socket, { cmd: 'agents' })) as AgentsAnswer;
    process.stdout.write(json ? JSON.stringify(result, null, 2) + '\n' : formatAgents(result));
    return 0;
  },
};
export default command;
