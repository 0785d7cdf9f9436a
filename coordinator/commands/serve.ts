import { defineCommand } from '../../common/cli.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { runService } from '../service.js';

/** Ends the process if a handle outlives the shutdown (the loop would otherwise keep it alive); unref'd, so a clean exit is not delayed. */
const EXIT_FALLBACK_MS = 1_000;

const command = defineCommand({
  summary: 'run the coordinator service: broker (embedded or external), rounds, control socket; READY=1 for systemd once it runs',
  flags: CONFIG_FLAGS,
  async run({ values }) {
    const code = await runService(loadOptionsOf(values));
    setTimeout(() => process.exit(code), EXIT_FALLBACK_MS).unref();
    return code;
  },
});
export default command;
