import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../../common/seeded-random.js';
import { convertNab } from '../../simulate/convert.js';
import { readClientDir } from '../../simulate/csv.js';
import { SHARED_DATA } from './paths.js';

/**
 * Irregularly sampled client CSVs as cluster monitors write them: samples 10–400 s apart,
 * bursts of 10–60 s steps (60 %) between 240–400 s ones (seeded). No trace in
 * ../shared/data is sampled like that (GCD has no timestamps, NAB is on a 300 s grid with a
 * few odd steps), so the values are real NAB EC2 CPU readings, `rows` of each of `clients`
 * files, re-stamped. `dir` receives the files; returns their paths.
 */
export function irregularNabCpu(dir: string, opts: { clients: number; rows: number; seed: number }): string[] {
  const nab = join(dir, 'nab-source');
  convertNab(join(SHARED_DATA, 'nab-server-metrics'), nab, { match: 'ec2_cpu_utilization_', limit: opts.clients });
  const out = join(dir, 'irregular');
  mkdirSync(out, { recursive: true });
  const random = seededRandom(opts.seed);
  const step = () => (random() < 0.6 ? 10 + Math.floor(random() * 51) : 240 + Math.floor(random() * 161));
  return readClientDir(nab, ['cpu']).map((s) => {
    let t = 1_400_000_000;
    const lines = ['timestamp,cpu'];
    for (let r = 0; r < Math.min(opts.rows, s.timestamps.length); r++) {
      lines.push(`${t},${s.values[r]}`);
      t += step();
    }
    const path = join(out, `${s.name}.csv`);
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  });
}
