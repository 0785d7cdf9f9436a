import { defineCommand } from '../../common/cli.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { runDaemon } from '../daemon/daemon.js';

const command = defineCommand({
  summary: 'run the agent daemon: sample into the ring, serve status (and metrics, training when configured) until SIGTERM',
  flags: CONFIG_FLAGS,
  async run({ values }) {
    return runDaemon(loadOptionsOf(values));
  },
});
export default command;
