// RAPL package power from the powercap sysfs tree.
//
// Permissions: since the PLATYPUS side channel fix (CVE-2020-8694, Linux 5.10 and stable
// backports, "powercap: restrict energy meter to root access") `energy_uj` is mode 0400 root
// (0600 where the zone supports resetting). The agent does not run as root, so the service ships
// a rule giving its group read access to exactly the counters read here:
//     /sys/class/powercap/intel-rapl:<N>/energy_uj      (top-level zones only)
// e.g. the tmpfiles.d line
//     z /sys/class/powercap/intel-rapl:*/energy_uj 0440 root icosfl -
// (the glob also matches the subzones intel-rapl:N:M, which is harmless). The zones only exist
// once intel_rapl_msr is loaded, so the rule must run after that (udev rule on
// SUBSYSTEM=="powercap", or tmpfiles applied again at service start). `name` and
// `max_energy_range_uj` beside it are world-readable (0444) and need no rule.
// AMD CPUs (Zen, Linux 5.8+) appear under the same intel-rapl names.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IcosflError } from '../../common/errors.js';
import { parseSysfsInt, readSource } from './read-source.js';
import type { CollectorSource } from './types.js';

/** Said when energy_uj is root-only: the commonest reason RAPL is missing on a real host. */
export const ACCESS_HINT = 'energy_uj is root-only since Linux 5.10; install the icosfl group rule from systemd/';

/** A top-level zone: `intel-rapl:0`, not a subzone (`intel-rapl:0:1`) nor the MMIO duplicate. */
const TOP_LEVEL_ZONE = /^intel-rapl:\d+$/;

/**
 * Energy consumed between two readings of a counter that wraps to 0 after `maxRangeUj`.
 * NaN when the counter went backwards by more than one wrap could explain (a reset).
 */
export function energyDeltaUj(prev: number, cur: number, maxRangeUj: number): number {
  if (cur >= prev) return cur - prev;
  if (!(maxRangeUj >= prev)) return NaN;
  return maxRangeUj - prev + cur;
}

interface Zone {
  energyPath: string;
  maxRangeUj: number;
}

/**
 * Package zones under <sysRoot>/class/powercap: top-level zones whose `name` is `package-N`.
 * Subzones (core, uncore, dram) are parts of their package and `psys` is the whole platform
 * including the packages, so adding either would count the same joules twice.
 */
export function findPackageZones(sysRoot: string): Zone[] {
  const base = join(sysRoot, 'class', 'powercap');
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch (cause) {
    throw new IcosflError('COLLECTOR_FAILED', `rapl: ${base} is missing (no RAPL on this host or powercap not loaded)`, { cause });
  }
  const zones: Zone[] = [];
  for (const entry of entries.filter((e) => TOP_LEVEL_ZONE.test(e)).sort()) {
    const dir = join(base, entry);
    if (!readSource('rapl', join(dir, 'name')).trim().startsWith('package-')) continue;
    const maxRangeUj = parseSysfsInt('rapl', join(dir, 'max_energy_range_uj'), readSource('rapl', join(dir, 'max_energy_range_uj')));
    zones.push({ energyPath: join(dir, 'energy_uj'), maxRangeUj });
  }
  if (zones.length === 0) throw new IcosflError('COLLECTOR_FAILED', `rapl: no package zone under ${base}`);
  return zones;
}

export const raplSource: CollectorSource = {
  name: 'rapl',
  defaultEnabled: false,
  metrics: { power_rapl_watts: { unit: 'watts', help: 'CPU package power from RAPL energy counters, all packages' } },
  create(ctx) {
    let zones: Zone[] | undefined;
    let prev: number[] | undefined;
    let prevAt = 0;
    return {
      name: 'rapl',
      metrics: ['power_rapl_watts'],
      async collect() {
        // Discovered on first use rather than at creation, so a missing tree is reported through
        // health like any other failure, and retried until it appears (module loaded late).
        zones ??= findPackageZones(ctx.sysRoot);
        let cur: number[];
        try {
          cur = zones.map((z) => parseSysfsInt('rapl', z.energyPath, readSource('rapl', z.energyPath, ACCESS_HINT)));
        } catch (err) {
          // Zones vanish when intel_rapl is unloaded: look them up again next time, from scratch.
          zones = prev = undefined;
          throw err;
        }
        const now = ctx.clock();
        let watts = NaN;
        if (prev !== undefined && now > prevAt) {
          let uj = 0;
          for (let i = 0; i < zones.length; i++) uj += energyDeltaUj(prev[i]!, cur[i]!, zones[i]!.maxRangeUj);
          watts = uj / 1e6 / ((now - prevAt) / 1000);
        }
        prev = cur;
        prevAt = now;
        return { power_rapl_watts: watts };
      },
    };
  },
};
