import { readFileSync } from 'node:fs';
import { defineCommand, type CommandGroup } from '../../common/cli.js';
import { IcosflError } from '../../common/errors.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { loadCoordinatorConfig } from '../config/load.js';
import { SOCKET_FLAGS, socketOf } from '../control-flags.js';
import { enrollAgent, readEnrolment, revokeAgent } from '../enrolment.js';
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

const show = defineCommand({
  summary: 'ask the running coordinator which agents it knows: state, online, first/last seen, last round, installed global, rounds, last error',
  flags: SOCKET_FLAGS,
  async run({ values }) {
    const result = (await coordinatorRequest(socketOf(values), { cmd: 'agents' })) as AgentsAnswer;
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatAgents(result));
    return 0;
  },
});


// enroll|revoke|list edit or show coordinator.enrolled_agents; the running service re-reads it within a second.
const enrolmentFile = (values: Parameters<typeof loadOptionsOf>[0]) => loadCoordinatorConfig(loadOptionsOf(values)).coordinator.enrolled_agents;

const enroll = defineCommand({
  summary: "enrol an agent's message-signing public key (from `icosfl-agent identity`): its signed messages are taken from then on",
  operands: 'AGENT_ID [KEY]',
  flags: {
    ...CONFIG_FLAGS,
    'key-file': { type: 'string', value: 'FILE', description: 'read the public key (ed25519:…) from FILE instead of the KEY argument' },
    force: { type: 'boolean', description: 'replace the key of an enrolled agent, or enrol a revoked one again' },
  },
  async run({ values, positionals }) {
    const [id, key, extra] = positionals;
    if (!id || extra !== undefined) throw new TypeError('agents enroll takes AGENT_ID and the public key (or --key-file FILE)');
    const keyFile = values['key-file'];
    if ((key === undefined) === (keyFile === undefined)) throw new TypeError('agents enroll needs the public key, as an argument (ed25519:…) or with --key-file FILE (the output of `icosfl-agent identity`)');
    let text = key;
    if (keyFile !== undefined) {
      try {
        text = readFileSync(keyFile, 'utf8');
      } catch (err) {
        throw new IcosflError('CRYPTO_KEY_INVALID', `--key-file ${keyFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
      }
    }
    const file = enrolmentFile(values);
    const e = enrollAgent(file, id, text!, { force: values.force === true });
    process.stdout.write(`agent ${id} enrolled with ${e.key} (${file})\n`);
    return 0;
  },
});

const revoke = defineCommand({
  summary: 'revoke an agent: the coordinator refuses its messages from then on (it stays listed, with when)',
  operands: 'AGENT_ID',
  flags: { ...CONFIG_FLAGS },
  async run({ values, positionals }) {
    const [id, extra] = positionals;
    if (!id || extra !== undefined) throw new TypeError('agents revoke takes exactly one AGENT_ID');
    const file = enrolmentFile(values);
    const e = revokeAgent(file, id);
    process.stdout.write(`agent ${id} revoked at ${e.revokedAt} (${file}); its messages are refused from now on\n`);
    return 0;
  },
});

const list = defineCommand({
  summary: 'list the enrolled agents: id, public key, enrolled and revoked times',
  flags: { ...CONFIG_FLAGS, json: { type: 'boolean', description: 'print JSON instead of a table' } },
  async run({ values }) {
    const file = enrolmentFile(values);
    const agents = [...readEnrolment(file).values()];
    if (values.json) process.stdout.write(JSON.stringify({ file, agents }, null, 2) + '\n');
    else if (agents.length === 0) process.stdout.write(`no agent is enrolled (${file})\n`);
    else process.stdout.write(table(['AGENT', 'KEY', 'ENROLLED', 'REVOKED'], agents.map((a) => [a.id, a.key, a.enrolledAt, a.revokedAt ?? '-'])));
    return 0;
  },
});

const command: CommandGroup = {
  summary: 'the agents the running coordinator knows (`agents` alone); enroll, revoke and list their signing keys',
  default: show,
  subcommands: { enroll, revoke, list },
};
export default command;
