import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IcosflError } from '../../common/errors.js';
import { parseSysfsInt, readSource } from './read-source.js';
import type { CollectorSource } from './types.js';

const POWER_INPUT = /^power\d+_input$/;

/**
 * Every `power*_input` attribute (instantaneous power, microwatts) under
 * <sysRoot>/class/hwmon/hwmon*: board sensors such as ina3221 on edge boards, PSU and CPU
 * drivers. `power*_average` (acpi_power_meter) is left out: it is a whole-node meter that
 * would add up with the component sensors.
 */
export function findPowerInputs(sysRoot: string): string[] {
  const base = join(sysRoot, 'class', 'hwmon');
  let chips: string[];
  try {
    chips = readdirSync(base).filter((e) => e.startsWith('hwmon')).sort();
  } catch (cause) {
    throw new IcosflError('COLLECTOR_FAILED', `hwmon: ${base} is missing`, { cause });
  }
  const inputs: string[] = [];
  for (const chip of chips) {
    for (const f of readdirSync(join(base, chip)).filter((e) => POWER_INPUT.test(e)).sort()) inputs.push(join(base, chip, f));
  }
  if (inputs.length === 0) throw new IcosflError('COLLECTOR_FAILED', `hwmon: no power*_input sensor under ${base}`);
  return inputs;
}

export const hwmonSource: CollectorSource = {
  name: 'hwmon',
  defaultEnabled: false,
  metrics: { power_hwmon_watts: { unit: 'watts', help: 'Sum of hwmon power*_input sensors' } },
  create(ctx) {
    let inputs: string[] | undefined;
    return {
      name: 'hwmon',
      metrics: ['power_hwmon_watts'],
      async collect() {
        inputs ??= findPowerInputs(ctx.sysRoot);
        let microwatts = 0;
        try {
          for (const path of inputs) microwatts += parseSysfsInt('hwmon', path, readSource('hwmon', path));
        } catch (err) {
          // hwmonN numbering changes when drivers reload: rediscover the sensors next time.
          inputs = undefined;
          throw err;
        }
        return { power_hwmon_watts: microwatts / 1e6 };
      },
    };
  },
};
