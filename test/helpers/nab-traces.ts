import { join } from 'node:path';
import { convertNab } from '../../simulate/convert.js';
import { readClientDir } from '../../simulate/csv.js';
import { SHARED_DATA } from './paths.js';

/**
 * Two real NAB EC2 CPU traces (4,032 samples each at 300 s) as the two channels of one machine,
 * row-major [samples × 2], with ring-style timestamps: what the trainer tests feed the native ring.
 * `workDir` receives the converted CSVs.
 */
export function twoNabCpuChannels(workDir: string): { samples: number; values: Float32Array; timestampsMs: Float64Array } {
  convertNab(join(SHARED_DATA, 'nab-server-metrics'), join(workDir, 'csv'), { match: 'ec2_cpu_utilization_' });
  const [a, b] = readClientDir(join(workDir, 'csv'), ['cpu'], 2);
  const samples = Math.min(a!.values.length, b!.values.length);
  const values = new Float32Array(samples * 2);
  for (let i = 0; i < samples; i++) {
    values[2 * i] = a!.values[i]!;
    values[2 * i + 1] = b!.values[i]!;
  }
  const timestampsMs = Float64Array.from({ length: samples }, (_, i) => 1.7e12 + i * 300_000);
  return { samples, values, timestampsMs };
}
