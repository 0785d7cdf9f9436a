import type { Command } from '../../common/cli.js';
import { CONFIG_FLAGS_USAGE, parseConfigFlags } from '../config/flags.js';
import { runService } from '../service.js';

/** Ends the process if a handle outlives the shutdown (the loop would otherwise keep it alive); unref'd, so a clean exit is not delayed. */
const EXIT_FALLBACK_MS = 1_000;

const command: Command = {
  summary: 'run the coordinator service: broker (embedded or external), rounds, control socket; READY=1 for systemd once it runs',
  usage: `serve ${CONFIG_FLAGS_USAGE}`,
  async run(argv) {
    const { load } = parseConfigFlags(argv);
    const code = await runService(load);
    setTimeout(() => process.exit(code), EXIT_FALLBACK_MS).unref();
    return code;
  },
};
export default command;
