import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { isIcosflError } from '../../../common/errors.js';
import { DEFAULT_FEDERATION_MODEL, parseFederationModel } from '../../../common/protocol/federation-model.js';
import { parseClientCsv, readClientCsv, type ClientSeries } from '../../../simulate/csv.js';
import { runSimulation } from '../../../simulate/experiment.js';
import { resampleSeries } from '../../../simulate/resample.js';
import { irregularNabCpu } from '../../helpers/irregular-traces.js';
import { tempDir } from '../../helpers/paths.js';

// The refusal happens before any training: runSimulation checks every client's windows first.
const tmp = tempDir('icosfl-no-windows-');
test.after(() => tmp.cleanup());
const model = parseFederationModel({ ...DEFAULT_FEDERATION_MODEL, metrics: ['cpu'] });
const logger = pino({ level: 'silent' });

async function refusal(series: ClientSeries[], resampleSeconds?: number): Promise<Error & { details?: Record<string, unknown> }> {
  try {
    await runSimulation(series, { model, testFraction: 0.2, logger, ...(resampleSeconds === undefined ? {} : { resampleSeconds }) });
  } catch (err) {
    assert.ok(isIcosflError(err, 'DATA_INVALID'), String(err));
    return err as Error;
  }
  throw new Error('expected the simulation to refuse the series');
}

test('irregular real values (10–400 s apart): the error says the gaps, how many, the largest, and suggests --resample', async () => {
  const series = irregularNabCpu(tmp.dir, { clients: 3, rows: 1200, seed: 7 }).map((f) => readClientCsv(f, ['cpu']));
  const e = await refusal(series);
  assert.match(e.message, /^no client has enough windows for lookback 12 \+ horizon 5: 3 of 3 files would have enough samples, but a window cannot span a gap and they have \d+ gaps in the timestamps \(intervals over 1\.5 × the median step; the largest (\d+) s, in ec2_cpu_utilization_\w+\.csv, whose median step is \d+ s\); --resample SECONDS puts irregularly sampled traces on a regular grid \(e\.g\. --resample \d+\)$/);
  const largest = Math.max(...series.flatMap((s) => Array.from(s.timestamps.subarray(1), (t, i) => t - s.timestamps[i]!)));
  assert.is(e.details!['largestGapSeconds'], largest);
  assert.ok((e.details!['gaps'] as number) > 100);
  // On a grid too fine for the trace most bins are empty: the error names them and asks for a larger grid.
  const fine = await refusal(series.map((s) => resampleSeries(s, 20).series), 20);
  assert.match(fine.message, /a window cannot span a gap and they have \d+ missing samples \(empty cells or empty 20 s bins\); a larger --resample than 20 s leaves fewer bins empty$/);
});

test('empty cells break windows as gaps do; a short trace is called short, not gappy', async () => {
  const rows = Array.from({ length: 400 }, (_, i) => `${i * 60},${i % 3 === 0 ? '' : i}`);
  const holes = await refusal([parseClientCsv(`timestamp,cpu\n${rows.join('\n')}\n`, 'holes.csv', ['cpu'])]);
  assert.match(holes.message, /1 of 1 files would have enough samples, but a window cannot span a gap and they have 134 missing samples \(empty cells\); --resample/);
  const short = await refusal([parseClientCsv('timestamp,cpu\n0,1\n60,2\n120,3\n', 'short.csv', ['cpu'])]);
  assert.match(short.message, /^no client has enough samples for lookback 12 \+ horizon 5: the file has 3 rows; longer traces or a smaller --lookback\/--horizon$/);
});

test.run();
