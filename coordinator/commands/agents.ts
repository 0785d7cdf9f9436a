import { readFileSync } from 'node:fs';
import type { Command } from '../../common/cli.js';
import { IcosflError } from '../../common/errors.js';
import { CONFIG_FLAGS_USAGE, parseConfigFlags } from '../config/flags.js';
import { loadCoordinatorConfig } from '../config/load.js';
import { enrollAgent, readEnrolment, revokeAgent } from '../enrolment.js';
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

const USAGE = `agents ${SOCKET_FLAGS_USAGE}
       agents enroll AGENT_ID (KEY | --key-file FILE) [--force] ${CONFIG_FLAGS_USAGE}
       agents revoke AGENT_ID ${CONFIG_FLAGS_USAGE}
       agents list [--json] ${CONFIG_FLAGS_USAGE}`;

/** enroll|revoke|list edit or show coordinator.enrolled_agents; the running service picks changes up within a second. */
function enrolment(sub: string, argv: string[]): number {
  const id = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = id ? argv.slice(1) : argv;
  const key = sub === 'enroll' && rest[0] && !rest[0].startsWith('-') ? rest[0] : undefined;
  const { load, values } = parseConfigFlags(key ? rest.slice(1) : rest, { 'key-file': { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } });
  const file = loadCoordinatorConfig(load).coordinator.enrolled_agents;
  if (sub === 'list') {
    if (id) throw new TypeError(`agents list takes no AGENT_ID, got '${id}'`);
    const agents = [...readEnrolment(file).values()];
    if (values.json) process.stdout.write(JSON.stringify({ file, agents }, null, 2) + '\n');
    else if (agents.length === 0) process.stdout.write(`no agent is enrolled (${file})\n`);
    else process.stdout.write(table(['AGENT', 'KEY', 'ENROLLED', 'REVOKED'], agents.map((a) => [a.id, a.key, a.enrolledAt, a.revokedAt ?? '-'])));
    return 0;
  }
  if (!id) throw new TypeError(`agents ${sub} needs an AGENT_ID; usage: ${USAGE}`);
  if (sub === 'revoke') {
    const e = revokeAgent(file, id);
    process.stdout.write(`agent ${id} revoked at ${e.revokedAt} (${file}); its messages are refused from now on\n`);
    return 0;
  }
  const keyFile = values['key-file'] as string | undefined;
  if ((key === undefined) === (keyFile === undefined)) throw new TypeError('agents enroll needs the public key, as an argument (ed25519:…) or with --key-file FILE (the output of `icosfl-agent identity`)');
  let text = key;
  if (keyFile !== undefined) {
    try {
      text = readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new IcosflError('CRYPTO_KEY_INVALID', `--key-file ${keyFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  }
  const e = enrollAgent(file, id, text!, { force: values.force === true });
  process.stdout.write(`agent ${id} enrolled with ${e.key} (${file})\n`);
  return 0;
}

const command: Command = {
  summary: 'the agents the running coordinator knows (state, online, seen, rounds, last error); enroll|revoke|list their signing keys',
  usage: USAGE,
  async run(argv) {
    const sub = argv[0];
    if (sub === 'enroll' || sub === 'revoke' || sub === 'list') return enrolment(sub, argv.slice(1));
    const { socket, json } = parseSocketFlags(argv);
    const result = (await coordinatorRequest(socket, { cmd: 'agents' })) as AgentsAnswer;
    process.stdout.write(json ? JSON.stringify(result, null, 2) + '\n' : formatAgents(result));
    return 0;
  },
};
export default command;
