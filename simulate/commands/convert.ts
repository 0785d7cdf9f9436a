import { defineCommand } from '../../common/cli.js';
import { convertGcd, convertNab } from '../convert.js';

const command = defineCommand({
  summary: 'convert a trace layout (gcd tarball, nab CSVs) to simulate\'s one-CSV-per-machine format',
  operands: 'SRC',
  flags: {
    from: { type: 'string', value: 'gcd|nab', description: "SRC's layout: 'gcd' (the GCD_VMs .tar.gz) or 'nab' (a NAB CSV file or directory)", required: true },
    out: { type: 'string', value: 'DIR', description: 'directory to write one CSV per machine to', required: true },
    limit: { type: 'string', value: 'N', description: 'gcd: convert at most N machines', defaultText: 'all' },
    match: { type: 'string', value: 'SUBSTRING', description: 'nab: only the .csv files whose name contains SUBSTRING', defaultText: 'every .csv file' },
    metric: { type: 'string', value: 'NAME', description: "nab: the column name the series' values are written under", default: 'cpu' },
  },
  async run({ values, positionals }) {
    const src = positionals[0];
    if (positionals.length !== 1 || !src) throw new TypeError('convert needs exactly one SRC (the gcd .tar.gz or a NAB file or directory)');
    const limit = values.limit === undefined ? Infinity : Number(values.limit);
    if (!(limit >= 1)) throw new RangeError(`--limit must be a positive integer, got '${values.limit}'`);
    let n: number;
    if (values.from === 'gcd') n = convertGcd(src, values.out, limit);
    else if (values.from === 'nab') n = convertNab(src, values.out, { match: values.match, metric: values.metric });
    else throw new RangeError(`--from must be gcd or nab, got '${values.from ?? ''}'`);
    process.stdout.write(`wrote ${n} client files to ${values.out}\n`);
    return 0;
  },
});
export default command;
