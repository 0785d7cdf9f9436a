import { stringify } from 'smol-toml';
import type { Command } from '../../common/cli.js';
import { CONFIG_FLAGS_USAGE, parseConfigFlags } from '../config/flags.js';
import { agentBrokerCredentials } from '../config/broker-credentials.js';
import { DEFAULT_CONFIG_PATH, loadAgentConfig } from '../config/load.js';

const command: Command = {
  summary: 'validate the config file, environment and flags; print the effective config (exit 78 naming the key if invalid)',
  usage: `check-config ${CONFIG_FLAGS_USAGE} [--quiet]`,
  async run(argv) {
    const { load, values } = parseConfigFlags(argv, { quiet: { type: 'boolean' } });
    const { source, ...config } = loadAgentConfig(load);
    // The TLS files the federation job reads (exit 78 naming key and file).
    if (config.federation.enabled) {
      // job.js pulls in tfjs: loaded only when there is a certificate whose CN must be checked.
      const agent = config.federation.cert === '' ? config.federation.agent_id : (await import('../federation/job.js')).agentIdOf(config.federation.agent_id);
      agentBrokerCredentials(config.federation, agent, source);
    }
    const from = source ?? `defaults (no file at ${load.configPath ?? process.env.ICOSFL_CONFIG ?? DEFAULT_CONFIG_PATH})`;
    process.stdout.write(`config OK: ${from}\n`);
    if (!values.quiet) process.stdout.write(`\n# effective configuration (file < ICOSFL_* environment < flags)\n${stringify(config)}\n`);
    return 0;
  },
};
export default command;
