import { defineCommand } from '../../common/cli.js';
import { parseDecimal } from '../../common/decimal.js';
import { convertGcd, convertNab, type ConvertedFile } from '../convert.js';
import { NAB_KIND_NAMES } from '../nab-kinds.js';
import { prepareOutputDir } from '../output-paths.js';
import { parseResampleFlag } from '../resample.js';

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** What the user should know about the files written: kinds, merged timestamps, the grid. */
function summaryLines(files: ConvertedFile[], out: string, resample: number | undefined): string[] {
  const kinds = new Map<string, number>();
  for (const f of files) kinds.set(f.columns.join(','), (kinds.get(f.columns.join(',')) ?? 0) + 1);
  const lines = [`wrote ${plural(files.length, 'client file')} to ${out}: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`];
  for (const f of files) {
    const name = f.source.split('/').pop();
    if (f.repeated.rows > 0) lines.push(`${name}: ${plural(f.repeated.rows, 'row')} repeat an earlier timestamp (first at line ${f.repeated.firstLine}); the later row of each timestamp kept`);
    if (f.outOfOrder.rows > 0) lines.push(`${name}: ${plural(f.outOfOrder.rows, 'row')} earlier than the row before (first at line ${f.outOfOrder.firstLine}); rows written in time order`);
  }
  if (resample !== undefined) {
    const sum = (k: 'rows' | 'bins' | 'emptyBins' | 'merged') => files.reduce((a, f) => a + (f.resample?.[k] ?? 0), 0);
    lines.push(`resampled to ${resample} s bins from each file's first timestamp: ${sum('rows')} rows into ${sum('bins')} bins, ${sum('emptyBins')} empty (written as missing samples), ${sum('merged')} rows shared a bin with an earlier one (the later value kept)`);
  }
  if (kinds.size > 1) lines.push(`run --metrics needs its columns in every file: --kind KIND converts one kind (${[...kinds.keys()].join(', ')})`);
  return lines;
}


import { resolve, sep } from 'node:path';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import { inputError, isSystemError, outputError } from '../../common/system-errors.js';

/**
 * The converters' file errors, said with the argument that named the path: anything under --out
 * (or any creating call) is OUTPUT_UNWRITABLE, anything else reading SRC is DATA_INVALID; an
 * archive's own complaint (simulate/tar.ts) gets SRC in front.
 */
function withPaths<T>(src: string, out: string, convert: () => T): T {
  try {
    return convert();
  } catch (err) {
    const sys = isSystemError(err) ? err : isIcosflError(err) && isSystemError(err.cause) ? err.cause : undefined;
    if (sys) {
      const underOut = sys.path !== undefined && (resolve(sys.path) === resolve(out) || resolve(sys.path).startsWith(resolve(out) + sep));
      if (underOut || sys.syscall === 'mkdir' || sys.syscall === 'write') throw outputError(out, sys, '--out');
      throw inputError('DATA_INVALID', sys.path ?? src, sys, 'SRC', 'name the gcd .tar.gz or a NAB file or directory');
    }
    if (isIcosflError(err, 'DATA_INVALID') && !err.message.includes(src)) throw new IcosflError('DATA_INVALID', `${src}: ${err.message}`, { cause: err });
    throw err;
  }
}

const command = defineCommand({  summary: 'convert a trace layout (gcd tarball, nab CSVs) to simulate\'s one-CSV-per-machine format',
  operands: 'SRC',
  flags: {
    from: { type: 'string', value: 'gcd|nab', description: "SRC's layout: 'gcd' (the GCD_VMs .tar.gz) or 'nab' (a NAB CSV file or directory)", required: true },
    out: { type: 'string', value: 'DIR', description: 'directory to write one CSV per machine to', required: true },
    limit: { type: 'string', value: 'N', description: 'convert at most N machines (files)', defaultText: 'all' },
    match: { type: 'string', value: 'SUBSTRING', description: 'nab: only the .csv files whose name contains SUBSTRING', defaultText: 'every .csv file' },
    kind: { type: 'string', value: NAB_KIND_NAMES.join('|'), description: 'nab: convert only the series of this kind (README: the NAB kinds table)', defaultText: 'every kind' },
    metric: { type: 'string', value: 'NAME', description: "nab: write every series' values under this column name", defaultText: "the series' kind (cpu, network_in, …)" },
    resample: { type: 'string', value: 'SECONDS', description: "bin irregular samples onto a SECONDS grid from each file's first timestamp (last sample in a bin wins; empty bins missing)", defaultText: 'off' },
  },
  async run({ values, positionals }) {
    const src = positionals[0];
    if (positionals.length !== 1 || !src) throw new TypeError('convert needs exactly one SRC (the gcd .tar.gz or a NAB file or directory)');
    if (values.out === undefined) throw new TypeError('--out DIR is required');
    const parsedLimit = values.limit === undefined ? undefined : parseDecimal(values.limit, 'float64');
    const limit = parsedLimit === undefined ? Infinity : parsedLimit.ok ? parsedLimit.value : NaN;
    if (!(Number.isInteger(limit) && limit >= 1) && limit !== Infinity) throw new RangeError(`--limit must be a positive integer, got '${values.limit}'`);
    if (values.from !== 'gcd' && values.from !== 'nab') throw new RangeError(`--from must be gcd or nab, got '${values.from ?? ''}'`);
    if (values.kind !== undefined && !NAB_KIND_NAMES.includes(values.kind)) throw new RangeError(`--kind must be one of ${NAB_KIND_NAMES.join(', ')}, got '${values.kind}'`);
    if (values.from === 'gcd' && (values.kind !== undefined || values.metric !== undefined || values.match !== undefined)) throw new RangeError('--kind, --metric and --match apply to --from nab; gcd files always hold cpu and mem');
    if (values.metric !== undefined && !/^[a-z][a-z0-9_]{0,63}$/.test(values.metric)) throw new RangeError(`--metric: '${values.metric}' is not a metric name (1–64 of a-z, 0-9 and _, starting with a letter)`);
    const resampleSeconds = parseResampleFlag(values.resample);
    prepareOutputDir('--out', values.out);
    const opts = { limit, ...(resampleSeconds === undefined ? {} : { resampleSeconds }) };
    const out = values.out;
    const files =
      values.from === 'gcd'
        ? withPaths(src, out, () => convertGcd(src, out, opts))
        : withPaths(src, out, () => convertNab(src, out, { ...opts, ...(values.match === undefined ? {} : { match: values.match }), ...(values.kind === undefined ? {} : { kind: values.kind }), ...(values.metric === undefined ? {} : { metric: values.metric }) }));
    process.stdout.write(summaryLines(files, values.out, resampleSeconds).join('\n') + '\n');
    return 0;
  },
});
export default command;
