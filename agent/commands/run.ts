import type { Command } from '../../common/cli.js';
import { CONFIG_FLAGS_USAGE, parseConfigFlags } from '../config/flags.js';
import { runDaemon } from '../daemon/daemon.js';

const command: Command = {
  summary: 'run the agent daemon: sample into the ring, serve status (and metrics, training when configured) until SIGTERM',
  usage: `run ${CONFIG_FLAGS_USAGE}`,
  async run(argv) {
    const { load } = parseConfigFlags(argv);
    return runDaemon(load);
  },
};
export default command;
