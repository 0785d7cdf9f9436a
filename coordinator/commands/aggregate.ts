import { defineCommand } from '../../common/cli.js';
import { IcosflError } from '../../common/errors.js';
import { parseShardSpec } from '../../common/protocol/shards.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';

const command = defineCommand({
  summary: "an aggregator worker of a sharded federation: sums shard K's updates of each round and sends the partial sum to serve",
  flags: {
    shard: { type: 'string', value: 'K/S', description: 'this worker is shard K (0 … S-1) of S; S must equal the config\'s federation.shards' },
    ...CONFIG_FLAGS,
  },
  notes: () => 'Run one worker per shard (K = 0 … S-1) with the leader\'s config, against the external broker serve uses; docs/OPERATIONS.md.',
  async run({ values }) {
    const spec = typeof values.shard === 'string' ? parseShardSpec(values.shard) : undefined;
    if (!spec) throw new IcosflError('USAGE_INVALID', `--shard ${values.shard === undefined ? 'is required' : `'${String(values.shard)}' is not K/S with 0 ≤ K < S and 2 ≤ S ≤ 256`} (e.g. --shard 0/4)`);
    const { runAggregator } = await import('../aggregator/worker.js');
    const code = await runAggregator(loadOptionsOf(values), spec);
    setTimeout(() => process.exit(code), 1_000).unref();
    return code;
  },
});
export default command;
