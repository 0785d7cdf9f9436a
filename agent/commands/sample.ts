import { join } from 'node:path';
import { defineCommand } from '../../common/cli.js';
import { isIcosflError } from '../../common/errors.js';
import { childLogger } from '../../common/log.js';
import { METRICS } from '../collectors/index.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { loadAgentConfig } from '../config/load.js';
import { formatRingReport } from '../sampler/format-ring.js';
import { openStateRing, RING_FILE } from '../sampler/open-ring.js';
import { Sampler } from '../sampler/sampler.js';
import type { MetricRing } from '../../native/ring.js';

/**
 * `icosfl-agent sample --seconds N`: the daemon's sampling in the foreground for N seconds (or
 * until Ctrl-C), into the same ring file, then a table of what the ring holds. Needs the ring
 * unlocked, i.e. no daemon running on the same state directory (RING_LOCKED, exit 75, if so),
 * and of the configured layout: a ring of another capacity or metric list is never migrated or
 * replaced from here (RING_LAYOUT_MISMATCH, exit 65, the file untouched), so a stray
 * `sample --state-dir` on the daemon's directory cannot cost it its history.
 * With [sampler] replay_file set it replays that file as the daemon would, except that
 * replay_hold is ignored (nothing here would release it): the stream starts at once.
 */
const command = defineCommand({
  summary: 'sample into the ring for N seconds, then print what it holds (per-metric stats and the newest rows)',
  flags: {
    seconds: { type: 'string', value: 'N', description: 'seconds to sample, 0 to 86400 (0: only print the ring)', default: '10' },
    rows: { type: 'string', value: 'N', description: 'newest rows to print, 0 to 100', default: '5' },
    ...CONFIG_FLAGS,
  },
  notes: () => 'With sampler.replay_file set it replays that file as the daemon would (history at once, then one row per interval), except that replay_hold is ignored.',
  async run({ values }) {
    const load = loadOptionsOf(values);
    const seconds = Number(values.seconds);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > 86_400) throw new RangeError(`--seconds must be a number from 0 to 86400, got '${String(values.seconds)}'`);
    const rows = Number(values.rows);
    if (!Number.isInteger(rows) || rows < 0 || rows > 100) throw new RangeError(`--rows must be an integer from 0 to 100, got '${String(values.rows)}'`);
    const config = loadAgentConfig(load);
    const log = childLogger('sample');
    const { metrics, interval_ms: intervalMs } = config.sampler;
    let ring: MetricRing;
    try {
      ring = openStateRing(config.agent.state_dir, metrics, config.sampler.ring_capacity, log, { onLayoutChange: 'refuse' });
    } catch (err) {
      if (isIcosflError(err, 'RING_LOCKED')) {
        err.message += `; a running daemon owns this state directory: use 'icosfl-agent status', or --state-dir DIR for a separate ring`;
      }
      throw err;
    }
    try {
      if (seconds > 0) {
        const { replay_file: file, replay_history: history } = config.sampler;
        const replay = file ? { file, history, hold: false } : null;
        const sampler = new Sampler({ ring, metrics, intervalMs, procRoot: config.sampler.proc_root, sysRoot: config.sampler.sys_root, logLevel: config.agent.log_level, logger: log, replay });
        process.stderr.write(`${replay ? `replaying ${file}: ` : ''}sampling ${metrics.length} metrics every ${intervalMs} ms for ${seconds} s (Ctrl-C stops early)…\n`);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, seconds * 1000);
          const early = () => {
            clearTimeout(timer);
            resolve();
          };
          process.once('SIGINT', early);
          sampler.once('fatal', (err: Error) => {
            clearTimeout(timer);
            reject(err);
          });
        });
        await sampler.stop();
        const st = sampler.stats();
        const jitter = st.jitterMs.n > 0 ? `; wake-up jitter p50 ${st.jitterMs.p50.toFixed(1)} ms, p99 ${st.jitterMs.p99.toFixed(1)} ms` : '';
        process.stderr.write(`stored ${st.samplesStored} samples${jitter}\n\n`);
      }
      process.stdout.write(
        formatRingReport({
          path: join(config.agent.state_dir, RING_FILE),
          size: ring.size,
          capacity: ring.capacity,
          channels: metrics,
          units: metrics.map((m) => METRICS[m]?.unit ?? ''),
          stats: ring.stats(),
          latest: ring.latest(Math.min(rows, ring.size)),
        }),
      );
    } finally {
      ring.close();
    }
    return 0;
  },
});
export default command;
