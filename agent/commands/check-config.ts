import { stringify } from 'smol-toml';
import { defineCommand } from '../../common/cli.js';
import { referenceText } from '../../common/config/reference.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { agentBrokerCredentials } from '../config/broker-credentials.js';
import { DEFAULT_CONFIG_PATH, loadAgentConfig } from '../config/load.js';
import { agentConfigReference } from '../config/reference.js';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { AgentConfig } from '../config/schema.js';

/**
 * With the federation on and encrypted, the key bundle is checked as the daemon will load it
 * (role, mode 0600, federation id), so a coordinator.json given to an agent fails here, exit 77.
 */
async function checkFederationKeys(config: AgentConfig): Promise<string | undefined> {
  const f = config.federation;
  if (!f.enabled || f.codec !== 'ckks') return undefined;
  const { loadAgentBundle } = await import('../../common/crypto/bundle.js');
  try {
    const { params } = loadAgentBundle(f.keys);
    if (f.federation_id && f.federation_id !== params.federationId) {
      throw new IcosflError('CONFIG_INVALID', `federation.federation_id '${f.federation_id}' is not the key bundle's federation '${params.federationId}' (${f.keys}); set it to '${params.federationId}' or leave it empty`);
    }
    return `federation ${params.federationId}, key ${params.keyId} (${f.keys})`;
  } catch (err) {
    if (!isIcosflError(err) || err.code === 'CONFIG_INVALID') throw err;
    throw new IcosflError(err.code, `federation.keys: ${err.message}`, { cause: err });
  }
}

const command = defineCommand({
  summary: 'validate the config file, environment and flags; print the effective config (exit 78 naming the key if invalid)',
  flags: { ...CONFIG_FLAGS, quiet: { type: 'boolean', description: 'print only the first line (config OK and the file), not the effective config' } },
  notes: () =>
    `Configuration keys (also in docs/CONFIG.md; an example with every key: agent.example.toml beside the package's\n` +
    `config code, installed as /etc/icosfl/agent.example.toml). Layers, strongest last: defaults < file < environment < flags.\n\n` +
    referenceText(agentConfigReference()),
  async run({ values }) {
    const load = loadOptionsOf(values);
    const { source, ...config } = loadAgentConfig(load);
    // The TLS files the federation job reads (exit 78 naming key and file).
    if (config.federation.enabled) {
      // job.js pulls in tfjs: loaded only when there is a certificate whose CN must be checked.
      const agent = config.federation.cert === '' ? config.federation.agent_id : (await import('../federation/job.js')).agentIdOf(config.federation.agent_id);
      agentBrokerCredentials(config.federation, agent, source);
    }
    const keys = await checkFederationKeys({ source, ...config });
    const from = source ?? `defaults (no file at ${load.configPath ?? process.env.ICOSFL_CONFIG ?? DEFAULT_CONFIG_PATH})`;
    process.stdout.write(`config OK: ${from}\n`);
    if (keys) process.stdout.write(`${keys}\n`);
    if (!values.quiet) process.stdout.write(`\n# effective configuration (file < ICOSFL_* environment < flags)\n${stringify(config)}\n`);
    return 0;
  },
});
export default command;
