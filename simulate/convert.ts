import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IcosflError } from '../common/errors.js';
import { tarEntries } from './tar.js';

/**
 * Converters from the layouts in ../shared/data/ to the simulation's CSV format (csv.ts).
 * - GCD (Google cluster trace 2011, GCD_VMs.tar.gz): files of "cpu mem" lines, no header, no
 *   timestamps, one line per 300 s. Timestamps are synthesised from 2011-05-01 00:00 UTC (the
 *   trace's first days) so the files are valid input; only their spacing matters.
 * - NAB (`timestamp,value`, "YYYY-MM-DD HH:MM:SS" UTC): univariate, written under one metric
 *   name (default cpu). Rows with a repeated timestamp keep the last value.
 */
const GCD_START_S = Date.UTC(2011, 4, 1) / 1000;
const GCD_STEP_S = 300;

export function convertGcd(src: string, out: string, limit = Infinity): number {
  mkdirSync(out, { recursive: true });
  let written = 0;
  const entries = [...tarEntries(readFileSync(src))].sort((a, b) => a.name.localeCompare(b.name));
  for (const { name, data } of entries) {
    if (written >= limit) break;
    const rows = Buffer.from(data).toString('utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
    const lines = ['timestamp,cpu,mem'];
    for (const [i, row] of rows.entries()) {
      const cells = row.trim().split(/\s+/);
      if (cells.length !== 2 || !cells.every((c) => Number.isFinite(Number(c)))) {
        throw new IcosflError('DATA_INVALID', `${src}:${name}:${i + 1}: expected two numbers (cpu mem), got '${row}'`);
      }
      lines.push(`${GCD_START_S + i * GCD_STEP_S},${cells[0]},${cells[1]}`);
    }
    writeFileSync(join(out, `${basename(name)}.csv`), lines.join('\n') + '\n');
    written++;
  }
  if (written === 0) throw new IcosflError('DATA_INVALID', `${src}: no files in the archive`);
  return written;
}

function nabFile(path: string, metric: string): string {
  const rows = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (rows[0]?.trim() !== 'timestamp,value') throw new IcosflError('DATA_INVALID', `${path}:1: expected the header 'timestamp,value'`);
  const byTime = new Map<number, string>();
  for (let i = 1; i < rows.length; i++) {
    const [ts, value, extra] = rows[i]!.split(',');
    const t = Date.parse(`${ts?.trim().replace(' ', 'T')}Z`) / 1000;
    if (extra !== undefined || !Number.isFinite(t) || !Number.isFinite(Number(value))) {
      throw new IcosflError('DATA_INVALID', `${path}:${i + 1}: expected 'YYYY-MM-DD HH:MM:SS,number', got '${rows[i]}'`);
    }
    byTime.set(t, value!.trim());
  }
  const lines = [`timestamp,${metric}`];
  for (const t of [...byTime.keys()].sort((a, b) => a - b)) lines.push(`${t},${byTime.get(t)}`);
  return lines.join('\n') + '\n';
}

/** src: one NAB CSV or a directory searched recursively; `match` filters file names by substring. */
export function convertNab(src: string, out: string, opts: { metric?: string; match?: string } = {}): number {
  const metric = opts.metric ?? 'cpu';
  const files: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
    else if (p.endsWith('.csv') && (!opts.match || basename(p).includes(opts.match))) files.push(p);
  };
  try {
    walk(src);
  } catch (cause) {
    throw new IcosflError('DATA_INVALID', `cannot read ${src}`, { cause });
  }
  if (files.length === 0) throw new IcosflError('DATA_INVALID', `no NAB .csv files${opts.match ? ` matching '${opts.match}'` : ''} under ${src}`);
  mkdirSync(out, { recursive: true });
  for (const f of files) writeFileSync(join(out, basename(f)), nabFile(f, metric));
  return files.length;
}
