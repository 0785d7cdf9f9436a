import { parseArgs } from 'node:util';
import type { Command } from '../../common/cli.js';
import { resolve, sep } from 'node:path';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import { inputError, isSystemError, outputError } from '../../common/system-errors.js';
import { convertGcd, convertNab } from '../convert.js';

/**
 * The converters' file errors, said with the argument that named the path: anything under --out
 * (or any creating call) is OUTPUT_UNWRITABLE, anything else reading SRC is DATA_INVALID; an
 * archive's own complaint (simulate/tar.ts) gets SRC in front.
 */
function withPaths(src: string, out: string, convert: () => number): number {
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

const command: Command = {
  summary: 'convert a trace layout (gcd tarball, nab CSVs) to simulate\'s one-CSV-per-machine format',
  usage: 'convert --from gcd|nab SRC --out DIR [--limit N] [--match SUBSTRING] [--metric NAME]',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { from: { type: 'string' }, out: { type: 'string' }, limit: { type: 'string' }, match: { type: 'string' }, metric: { type: 'string' } },
    });
    const src = positionals[0];
    if (positionals.length !== 1 || !src) throw new TypeError('convert needs exactly one SRC (the gcd .tar.gz or a NAB file or directory)');
    if (!values.out) throw new TypeError('--out DIR is required');
    const limit = values.limit === undefined ? Infinity : Number(values.limit);
    if (!(limit >= 1)) throw new RangeError(`--limit must be a positive integer, got '${values.limit}'`);
    const out = values.out;
    let n: number;
    if (values.from === 'gcd') n = withPaths(src, out, () => convertGcd(src, out, limit));
    else if (values.from === 'nab') n = withPaths(src, out, () => convertNab(src, out, { match: values.match, metric: values.metric }));
    else throw new RangeError(`--from must be gcd or nab, got '${values.from ?? ''}'`);
    process.stdout.write(`wrote ${n} client files to ${values.out}\n`);
    return 0;
  },
};
export default command;
