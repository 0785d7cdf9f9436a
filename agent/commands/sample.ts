import type { Command } from '../../common/cli.js';

const command: Command = {
  summary: 'placeholder until the sampler lands',
  usage: 'sample',
  async run() {
    return 1;
  },
};
export default command;
