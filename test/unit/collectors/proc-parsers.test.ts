import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isIcosflError } from '../../../common/errors.js';
import { counterRate } from '../../../agent/collectors/counter-rate.js';
import { cpuBusyPercent, parseCpuTimes } from '../../../agent/collectors/cpu.js';
import { parseDiskstats } from '../../../agent/collectors/disk.js';
import { parseLoadavg } from '../../../agent/collectors/load.js';
import { parseMeminfo } from '../../../agent/collectors/memory.js';
import { DEFAULT_EXCLUDED_INTERFACES, networkRates, parseNetDev } from '../../../agent/collectors/network.js';

// Pure parsers on literal strings in the kernel's formats, with values worked out by hand.

function throwsCollectorFailed(fn: () => unknown, mentions: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isIcosflError(err, 'COLLECTOR_FAILED'), `expected COLLECTOR_FAILED, got ${String(err)}`);
    assert.match((err as Error).message, mentions);
    return;
  }
  assert.unreachable('expected a COLLECTOR_FAILED error');
}

test('cpu: guest is not added twice, iowait counts as idle, steal as busy', () => {
  const t = parseCpuTimes('cpu  100 10 50 800 30 5 5 20 40 0\ncpu0 50 5 25 400 15 2 3 10 20 0\n');
  assert.equal(t, { total: 100 + 10 + 50 + 800 + 30 + 5 + 5 + 20, idle: 830 });
});

test('cpu: busy % between readings, NaN on the first and after a reset', () => {
  const a = { total: 1000, idle: 800 };
  const b = { total: 1400, idle: 1100 }; // 400 jiffies, 300 idle → 25 % busy
  assert.is(cpuBusyPercent(a, b), 25);
  assert.ok(Number.isNaN(cpuBusyPercent(undefined, b)));
  assert.ok(Number.isNaN(cpuBusyPercent(b, a)), 'counters went backwards');
  assert.ok(Number.isNaN(cpuBusyPercent(a, a)), 'no time passed');
  // iowait stepping back makes idle shrink more than total: clamp rather than report > 100 %.
  assert.is(cpuBusyPercent({ total: 1000, idle: 800 }, { total: 1100, idle: 790 }), 100);
});

test('cpu: malformed /proc/stat names the file and what was expected', () => {
  throwsCollectorFailed(() => parseCpuTimes('intr 1 2 3\n'), /\/proc\/stat.*"cpu"/);
  throwsCollectorFailed(() => parseCpuTimes('cpu  1 2 x 4\n'), /numeric/);
  throwsCollectorFailed(() => parseCpuTimes(''), /\/proc\/stat/);
});

test('memory: used % from MemAvailable, bytes from kB', () => {
  const r = parseMeminfo('MemTotal:       1000000 kB\nMemFree:    100000 kB\nMemAvailable:    250000 kB\nActive(anon):  5 kB\n');
  assert.is(r.usedPct, 75);
  assert.is(r.availableBytes, 250000 * 1024);
});

test('memory: kernels without MemAvailable fall back to free + buffers + cached + reclaimable slab', () => {
  const r = parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\nSReclaimable: 50 kB\n');
  assert.is(r.availableBytes, 500 * 1024);
  assert.is(r.usedPct, 50);
});

test('memory: missing MemTotal is reported', () => {
  throwsCollectorFailed(() => parseMeminfo('MemFree: 100 kB\n'), /MemTotal/);
  throwsCollectorFailed(() => parseMeminfo('MemTotal: 100 kB\n'), /MemAvailable or MemFree/);
});

test('load: three averages', () => {
  assert.equal(parseLoadavg('0.12 0.26 0.16 1/87 8337\n'), { load1: 0.12, load5: 0.26, load15: 0.16 });
  throwsCollectorFailed(() => parseLoadavg('0.12 abc\n'), /\/proc\/loadavg/);
});

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 220129150    6407    0    0    0     0          0         0   466606    4021    0    0    0     0       0          0
eth1:12 1 0 0 0 0 0 0 34 1 0 0 0 0 0 0
`;

test('network: parses every interface, including the no-space-after-colon form', () => {
  const m = parseNetDev(NET_DEV);
  assert.equal([...m.keys()], ['lo', 'eth0', 'eth1']);
  assert.equal(m.get('eth0'), { rx: 220129150, tx: 466606 });
  assert.equal(m.get('eth1'), { rx: 12, tx: 34 });
  throwsCollectorFailed(() => parseNetDev(NET_DEV + '  eth2: 1 2 3\n'), /\/proc\/net\/dev line 6/);
});

test('network: rates sum non-loopback interfaces; new interfaces wait a sample; resets give NaN', () => {
  const prev = new Map([['lo', { rx: 0, tx: 0 }], ['eth0', { rx: 1000, tx: 100 }]]);
  const cur = new Map([['lo', { rx: 9e9, tx: 9e9 }], ['eth0', { rx: 3000, tx: 600 }], ['wg0', { rx: 5e6, tx: 5e6 }]]);
  assert.equal(networkRates(prev, cur, 500, DEFAULT_EXCLUDED_INTERFACES), { rx: 4000, tx: 1000 });
  const first = networkRates(undefined, cur, 500, DEFAULT_EXCLUDED_INTERFACES);
  assert.ok(Number.isNaN(first.rx) && Number.isNaN(first.tx));
  const reset = networkRates(cur, new Map([['eth0', { rx: 10, tx: 700 }]]), 1000, DEFAULT_EXCLUDED_INTERFACES);
  assert.ok(Number.isNaN(reset.rx), 'rx counter went backwards');
  assert.is(reset.tx, 100);
});

test('counterRate: per second, NaN without history, time or monotonicity', () => {
  assert.is(counterRate(100, 400, 1500), 200);
  assert.ok(Number.isNaN(counterRate(undefined, 400, 1000)));
  assert.ok(Number.isNaN(counterRate(100, 400, 0)));
  assert.ok(Number.isNaN(counterRate(500, 400, 1000)));
});

test('disk: sectors read and written per device name (17- and 20-field kernels)', () => {
  const m = parseDiskstats(
    ' 254       0 vda 35358 8527 2337874 13517 26266 23375 3329416 19472 0 11248 36425 5258 31 132032 1166 4643 2269\n' +
      '   8       1 sda1 1200 0 40960 410 12 0 96 20 0 300 430\n',
  );
  assert.equal(m.get('vda'), { read: 2337874, written: 3329416 });
  assert.equal(m.get('sda1'), { read: 40960, written: 96 });
  throwsCollectorFailed(() => parseDiskstats('   8 0 sda 1 2 x\n'), /\/proc\/diskstats line 1/);
});

test.run();
