import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findPowerInputs } from '../../../agent/collectors/hwmon.js';
import { createCollectors } from '../../../agent/collectors/index.js';
import { ACCESS_HINT, energyDeltaUj, findPackageZones } from '../../../agent/collectors/rapl.js';
import { parseSysfsInt, sourceError } from '../../../agent/collectors/read-source.js';
import { FIXTURES, tempDir } from '../../helpers/paths.js';
import { captureLogger } from './log-capture.js';

// RAPL and hwmon readers on the fixture sysfs tree (test/fixtures/collectors/sys): a two-socket
// server with core/dram subzones, a psys zone and an MMIO duplicate of package-0; an ina3221
// board sensor beside a coretemp chip and an ACPI power meter.

const FIX_SYS = join(FIXTURES, 'collectors', 'sys');
const tmp = tempDir('icosfl-power-');
test.after(() => tmp.cleanup());
const MAX_RANGE = 262143328850;

function sysCopy(name: string): string {
  const dir = join(tmp.dir, name);
  cpSync(FIX_SYS, dir, { recursive: true });
  return dir;
}

function setEnergy(sysRoot: string, zone: string, uj: number): void {
  writeFileSync(join(sysRoot, 'class', 'powercap', zone, 'energy_uj'), `${uj}\n`);
}

test('energyDeltaUj: plain delta, wraparound at max_energy_range_uj, impossible values', () => {
  assert.is(energyDeltaUj(1_000, 5_000, MAX_RANGE), 4_000);
  assert.is(energyDeltaUj(MAX_RANGE - 1_000, 2_000, MAX_RANGE), 3_000);
  assert.ok(Number.isNaN(energyDeltaUj(MAX_RANGE + 10, 5, MAX_RANGE)), 'a previous value above the range cannot have wrapped');
});

test('parseSysfsInt: one non-negative integer', () => {
  assert.is(parseSysfsInt('rapl', 'f', '262143328850\n'), 262143328850);
  for (const bad of ['', '-1\n', '1.5\n', 'abc\n']) assert.throws(() => parseSysfsInt('rapl', '/x/energy_uj', bad), /\/x\/energy_uj is malformed/);
});

test('a root-only energy_uj is reported with the permission hint', () => {
  // Tests may run as root, where chmod cannot deny a read: check the error built from EACCES.
  const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const err = sourceError('rapl', '/sys/class/powercap/intel-rapl:0/energy_uj', denied, ACCESS_HINT);
  assert.is(err.code, 'COLLECTOR_FAILED');
  assert.is(err.message, `rapl: /sys/class/powercap/intel-rapl:0/energy_uj is not readable by this user (${ACCESS_HINT})`);
  assert.is(err.cause, denied);
});

test('RAPL: package zones only (no subzones, psys or MMIO duplicate)', () => {
  const zones = findPackageZones(FIX_SYS);
  assert.equal(zones.map((z) => z.energyPath.slice(FIX_SYS.length)), ['/class/powercap/intel-rapl:0/energy_uj', '/class/powercap/intel-rapl:1/energy_uj']);
  assert.equal(zones.map((z) => z.maxRangeUj), [MAX_RANGE, MAX_RANGE]);
});

test('RAPL: watts from energy deltas, across a wraparound of package-0', async () => {
  const sysRoot = sysCopy('rapl-wrap');
  let now = 0;
  const [rapl] = createCollectors({ metrics: ['power_rapl_watts'], sysRoot, clock: () => now, logger: captureLogger().logger });
  assert.ok(Number.isNaN((await rapl!.collect()).power_rapl_watts), 'no delta on the first sample');
  // Two seconds later: package-0 wrapped from 262,143,000,000 to 45,000,000 µJ
  // (328,850 + 45,000,000 = 45,328,850 µJ), package-1 went up by 122,671,150 µJ: 168 J in 2 s.
  setEnergy(sysRoot, 'intel-rapl:0', 45_000_000);
  setEnergy(sysRoot, 'intel-rapl:1', 50_122_671_150);
  // Subzones, psys and the MMIO zone move too: counting any of them would change the result.
  setEnergy(sysRoot, 'intel-rapl:0:0', 100_900_000_000);
  setEnergy(sysRoot, 'intel-rapl:2', 401_000_000_000);
  setEnergy(sysRoot, 'intel-rapl-mmio:0', 45_000_000);
  now = 2000;
  assert.equal(await rapl!.collect(), { power_rapl_watts: 84 });
  // Next second: no wrap, 30 J + 20 J.
  setEnergy(sysRoot, 'intel-rapl:0', 75_000_000);
  setEnergy(sysRoot, 'intel-rapl:1', 50_142_671_150);
  now = 3000;
  assert.equal(await rapl!.collect(), { power_rapl_watts: 50 });
});

test('RAPL: a missing tree is reported once and skipped; an unreadable counter is retried from scratch', async () => {
  const { logger, lines } = captureLogger();
  const [absent] = createCollectors({ metrics: ['power_rapl_watts'], sysRoot: join(tmp.dir, 'nothing'), logger });
  for (let i = 0; i < 3; i++) await absent!.collect().catch(() => undefined);
  assert.is(absent!.health().failures, 3);
  assert.match(absent!.health().lastError!, /powercap is missing \(no RAPL/);
  assert.is(lines.filter((l) => l.level === 40).length, 1);

  const sysRoot = sysCopy('rapl-vanish');
  let now = 0;
  const [rapl] = createCollectors({ metrics: ['power_rapl_watts'], sysRoot, clock: () => now, logger });
  await rapl!.collect();
  rmSync(join(sysRoot, 'class', 'powercap', 'intel-rapl:1'), { recursive: true });
  now = 1000;
  await rapl!.collect().then(
    () => assert.unreachable('should fail'),
    (err: { code: string; message: string }) => {
      assert.is(err.code, 'COLLECTOR_FAILED');
      assert.match(err.message, /intel-rapl:1\/energy_uj is missing/);
    },
  );
  // One package left: rediscovered, and its first reading again has no delta.
  now = 2000;
  assert.ok(Number.isNaN((await rapl!.collect()).power_rapl_watts));
  setEnergy(sysRoot, 'intel-rapl:0', 9_671_150); // wrapped again: 328,850 + 9,671,150 µJ = 10 J
  now = 3000;
  assert.equal(await rapl!.collect(), { power_rapl_watts: 10 });
});

test('hwmon: sums power*_input (µW) and leaves power*_average meters out', async () => {
  assert.equal(findPowerInputs(FIX_SYS).map((p) => p.slice(FIX_SYS.length)), [
    '/class/hwmon/hwmon1/power1_input',
    '/class/hwmon/hwmon1/power2_input',
    '/class/hwmon/hwmon1/power3_input',
  ]);
  const sysRoot = sysCopy('hwmon');
  const [hwmon] = createCollectors({ metrics: ['power_hwmon_watts'], sysRoot });
  assert.equal(await hwmon!.collect(), { power_hwmon_watts: 5.12 + 2.75 + 1.13 });
  writeFileSync(join(sysRoot, 'class', 'hwmon', 'hwmon1', 'power2_input'), '0\n');
  assert.equal(await hwmon!.collect(), { power_hwmon_watts: 5.12 + 1.13 });
});

test('hwmon: no sensors or no tree is a reported failure, not a crash', async () => {
  const sysRoot = sysCopy('hwmon-none');
  rmSync(join(sysRoot, 'class', 'hwmon', 'hwmon1'), { recursive: true });
  const { logger } = captureLogger();
  const [none] = createCollectors({ metrics: ['power_hwmon_watts'], sysRoot, logger });
  await none!.collect().then(
    () => assert.unreachable('should fail'),
    (err: Error) => assert.match(err.message, /no power\*_input sensor under/),
  );
  const [absent] = createCollectors({ metrics: ['power_hwmon_watts'], sysRoot: join(tmp.dir, 'nothing'), logger });
  await absent!.collect().then(
    () => assert.unreachable('should fail'),
    (err: Error) => assert.match(err.message, /class\/hwmon is missing/),
  );
});

test.run();
