import { parseArgs } from 'node:util';
import type { Command } from '../../common/cli.js';
import { convertGcd, convertNab } from '../convert.js';

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
    let n: number;
    if (values.from === 'gcd') n = convertGcd(src, values.out, limit);
    else if (values.from === 'nab') n = convertNab(src, values.out, { match: values.match, metric: values.metric });
    else throw new RangeError(`--from must be gcd or nab, got '${values.from ?? ''}'`);
    process.stdout.write(`wrote ${n} client files to ${values.out}\n`);
    return 0;
  },
};
export default command;
