import { defineCommand } from '../../common/cli.js';
import { loadOrCreateSigningKey } from '../../common/crypto/signing-keys.js';
import { publicKeyText } from '../../common/protocol/signature.js';
import { CONFIG_FLAGS, JSON_FLAG, loadOptionsOf } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';
import { agentIdOf, signingKeyPath } from '../federation/job.js';

/**
 * Prints this agent's id and its message-signing public key, creating the key (mode 0600) when
 * there is none yet, so an operator can enrol the agent before its first start:
 *   icosfl-coordinator agents enroll <id> <public key>
 */
const command = defineCommand({
  summary: "print this agent's id and signing public key (created on first use), for `icosfl-coordinator agents enroll`",
  flags: { ...CONFIG_FLAGS, ...JSON_FLAG },
  async run({ values }) {
    const config = loadAgentConfig(loadOptionsOf(values));
    const agent = agentIdOf(config.federation.agent_id);
    const path = signingKeyPath(config.federation, config.agent.state_dir);
    const { key, created } = loadOrCreateSigningKey(path);
    const publicKey = publicKeyText(key);
    if (values.json) process.stdout.write(JSON.stringify({ agent, publicKey, signingKey: path, created }) + '\n');
    else process.stdout.write(`agent ${agent}\npublic key ${publicKey}\nsigning key ${path}${created ? ' (created now)' : ''}\nenrol it: icosfl-coordinator agents enroll ${agent} ${publicKey}\n`);
    return 0;
  },
});
export default command;
