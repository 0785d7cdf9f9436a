import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { collectAll, createCollectors, DEFAULT_METRICS, METRICS, SOURCES } from '../../../agent/collectors/index.js';
import { trackHealth } from '../../../agent/collectors/track-health.js';
import { FIXTURES } from '../../helpers/paths.js';
import { captureLogger } from './log-capture.js';

// The catalogue, createCollectors' validation and data minimisation, and the health wrapper.

const PROC = join(FIXTURES, 'collectors', 'proc-t0');

test('the catalogue holds exactly the metric names of docs/ARCHITECTURE.md, in that order', () => {
  assert.equal(Object.keys(METRICS), [
    'cpu_busy_pct', 'mem_used_pct', 'mem_available_bytes', 'load1', 'load5', 'load15',
    'net_rx_bytes_per_s', 'net_tx_bytes_per_s', 'disk_read_bytes_per_s', 'disk_write_bytes_per_s', 'fs_used_pct',
    'power_rapl_watts', 'power_hwmon_watts', 'gpu_util_pct', 'gpu_mem_used_bytes', 'gpu_power_watts',
  ]);
  for (const [name, info] of Object.entries(METRICS)) {
    assert.ok(info.unit && info.help.length > 10, `${name} has a unit and a help line`);
    assert.ok(SOURCES.some((s) => s.name === info.collector), `${name} names a registered collector`);
  }
  assert.equal(new Set(SOURCES.map((s) => s.name)).size, SOURCES.length, 'source names are unique');
});

test('defaults: the sources every Linux host has; power and GPU are opt-in', () => {
  assert.equal([...DEFAULT_METRICS], Object.keys(METRICS).slice(0, 11));
  assert.equal(SOURCES.filter((s) => !s.defaultEnabled).map((s) => s.name), ['rapl', 'hwmon', 'gpu']);
});

test('unknown, repeated or no metrics are config errors naming the key and the valid names', () => {
  const expectConfigError = (metrics: string[], message: RegExp): void => {
    try {
      createCollectors({ metrics });
      assert.unreachable('should throw');
    } catch (err) {
      assert.ok(isIcosflError(err, 'CONFIG_INVALID'), String(err));
      assert.match((err as Error).message, message);
    }
  };
  expectConfigError(['cpu_busy_pct', 'cpu_pct', 'gpu_temp'], /^metrics: unknown metric "cpu_pct", "gpu_temp"; valid metrics are cpu_busy_pct, mem_used_pct, .*gpu_power_watts$/);
  expectConfigError(['load1', 'load1'], /"load1" listed more than once/);
  expectConfigError([], /the list is empty; choose from cpu_busy_pct/);
  assert.throws(() => createCollectors({ metrics: 'cpu_busy_pct' as unknown as string[] }), (e: Error) => e instanceof TypeError && /metrics must be an array/.test(e.message));
});

test('data minimisation: unconfigured sources are not created, configured ones return only their channels', async () => {
  const collectors = createCollectors({ metrics: ['load15', 'mem_available_bytes'], procRoot: PROC });
  assert.equal(collectors.map((c) => [c.name, c.metrics]), [['memory', ['mem_available_bytes']], ['load', ['load15']]]);
  assert.equal(await collectAll(collectors), { mem_available_bytes: 9871236 * 1024, load15: 0.45 });
  assert.equal(await collectors[1]!.collect(), { load15: 0.45 });
});

test('health wrapper: a bug in a source becomes COLLECTOR_FAILED with the cause; collectAll never rejects', async () => {
  const { logger, lines } = captureLogger();
  let calls = 0;
  const broken = trackHealth(
    {
      name: 'broken',
      metrics: ['a', 'b'],
      async collect() {
        calls++;
        if (calls <= 2) throw new TypeError('cannot read properties of undefined');
        return { a: 1, b: 2, c: 3 };
      },
    },
    ['a', 'b'],
    logger,
  );
  assert.equal(broken.health(), { name: 'broken', ok: false, lastSuccessMs: null, lastErrorMs: null, lastError: null, lastDurationMs: null, successes: 0, failures: 0 });
  await broken.collect().then(
    () => assert.unreachable('should throw'),
    (err: Error & { code?: string; cause?: unknown }) => {
      assert.is(err.code, 'COLLECTOR_FAILED');
      assert.match(err.message, /^broken: cannot read properties/);
      assert.instance(err.cause, TypeError);
    },
  );
  const sample = await collectAll([broken]);
  assert.ok(Number.isNaN(sample.a) && Number.isNaN(sample.b));
  assert.equal(await collectAll([broken]), { a: 1, b: 2 }, 'c is not a configured channel');
  const h = broken.health();
  assert.equal([h.ok, h.successes, h.failures, h.lastError], [true, 1, 2, 'broken: cannot read properties of undefined']);
  assert.equal(lines.map((l) => l.msg), ['collector failed; its metrics are NaN until it recovers', 'collector recovered']);
});

test.run();
