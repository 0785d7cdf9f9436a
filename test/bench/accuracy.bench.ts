import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertGcd, convertNab } from '../../simulate/convert.js';
import { summariseSweep, type SweepSummary } from '../../simulate/sweep.js';
import type { Verdict } from '../../simulate/verdict.js';
import { DIST, SHARED_DATA, tempDir } from '../helpers/paths.js';

/**
 * accuracy: the issue's accuracy goal over many real trace sets, the figures docs/ARCHITECTURE.md
 * quotes. Each set runs `icosfl-coordinator simulate --json` (defaults: CKKS-encrypted, backend
 * native) in its own process, `--jobs` at a time, and simulate/sweep.ts sums the
 * verdicts per seed.
 *
 *   npm run bench -- accuracy [--sets core|held-out|all|unseen] [--seeds 42,7] [--plaintext] [--jobs N] [--backend B] [--mix-memory N]
 *
 * core: the 12 sets every design change was measured on (11 GCD subsets of up to 50 VMs, by
 * position in the archive's sorted file list, and NAB's 8 EC2 CPU traces). held-out: 6 more GCD
 * subsets, added later: a change is chosen on core and then checked on them, to see whether it
 * generalises. unseen: 6 GCD subsets that no design choice was ever measured on, first run once
 * the trainer was finished (2026-11-28), to estimate how the shipped method does on traces it was
 * not tuned for, as the issue's own evaluation will; `all` leaves them out. All 18 sets of `all`
 * for two seeds took 296 s with 2 jobs on a 2-core VM (`--plaintext` gives the same figures
 * about a quarter faster). Progress and each seed's summary go to stderr; the JSON line has
 * `by_seed: {SEED: {core: …, held_out: …}}` (or `{unseen: …}`), each a sweep.ts summary.
 * --mix-memory is passed to simulate (0: mixture shares fitted once on the validation tail, the
 * protocol before mixRecent). BENCH_DATA replaces ../shared/data (the folder holding
 * google-gcd-vms-cpu-mem/ and nab-server-metrics/).
 */
const GCD_CORE: [number, number][] = [
  [101, 150], [301, 350], [401, 450], [601, 650], [801, 850], [1001, 1050],
  [1101, 1150], [1201, 1230], [1351, 1400], [1501, 1550], [1551, 1600],
];
const GCD_HELD_OUT: [number, number][] = [[201, 250], [501, 550], [701, 750], [901, 950], [1251, 1300], [1451, 1500]];
const GCD_UNSEEN: [number, number][] = [[51, 100], [351, 400], [551, 600], [751, 800], [951, 1000], [1301, 1350]];

const { values } = parseArgs({
  options: {
    sets: { type: 'string', default: 'core' },
    seeds: { type: 'string', default: '42' },
    plaintext: { type: 'boolean', default: false },
    jobs: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    backend: { type: 'string', default: 'native' },
    'mix-memory': { type: 'string' },
  },
});
if (!['core', 'held-out', 'all', 'unseen'].includes(values.sets)) throw new RangeError(`--sets must be core, held-out, all or unseen, got '${values.sets}'`);
const seeds = values.seeds.split(',').map(Number);
if (seeds.some((s) => !Number.isInteger(s))) throw new RangeError(`--seeds must be integers separated by commas, got '${values.seeds}'`);
const jobs = Number(values.jobs);
if (!(Number.isInteger(jobs) && jobs >= 1)) throw new RangeError(`--jobs must be a positive integer, got '${values.jobs}'`);
/** The traces' folder: ../shared/data beside the checkout, or BENCH_DATA (as the train benchmark). */
const DATA = process.env.BENCH_DATA ?? SHARED_DATA;
const progress = (msg: string) => process.stderr.write(`[accuracy] ${msg}\n`);

type Group = 'core' | 'held-out' | 'unseen';

interface TraceSet {
  group: Group;
  name: string;
  dir: string;
  metrics: string;
}

/** The sets' CSV folders under `work`: GCD subsets by 1-based position in the sorted archive, NAB's EC2 CPU traces. */
function prepareSets(work: string): TraceSet[] {
  const sets: TraceSet[] = [];
  const ranges: { group: Group; r: [number, number] }[] = [
    ...(['core', 'all'].includes(values.sets) ? GCD_CORE.map((r) => ({ group: 'core' as const, r })) : []),
    ...(['held-out', 'all'].includes(values.sets) ? GCD_HELD_OUT.map((r) => ({ group: 'held-out' as const, r })) : []),
    ...(values.sets === 'unseen' ? GCD_UNSEEN.map((r) => ({ group: 'unseen' as const, r })) : []),
  ];
  if (ranges.length > 0) {
    const all = join(work, 'gcd-all');
    convertGcd(join(DATA, 'google-gcd-vms-cpu-mem', 'GCD_VMs.tar.gz'), all);
    const files = readdirSync(all).sort((a, b) => a.localeCompare(b)); // convertGcd's order
    for (const { group, r: [first, last] } of ranges) {
      const dir = join(work, `gcd-${first}-${last}`);
      mkdirSync(dir);
      for (const f of files.slice(first - 1, last)) copyFileSync(join(all, f), join(dir, f));
      sets.push({ group, name: `gcd-${first}-${last}`, dir, metrics: 'cpu,mem' });
    }
  }
  if (['core', 'all'].includes(values.sets)) {
    const dir = join(work, 'nab-ec2-cpu');
    convertNab(join(DATA, 'nab-server-metrics'), dir, { match: 'ec2_cpu_utilization_' });
    sets.push({ group: 'core', name: 'nab-ec2-cpu', dir, metrics: 'cpu' });
  }
  return sets;
}

/** One `simulate --json` run; its verdict, or an error carrying the end of its stderr. */
function simulate(set: TraceSet, seed: number): Promise<{ verdict: Verdict; seconds: number }> {
  const args = [join(DIST, 'simulate', 'cli.js'), 'run', '--data', set.dir, '--metrics', set.metrics, '--backend', values.backend, '--seed', String(seed), '--json'];
  if (values.plaintext) args.push('--plaintext');
  if (values['mix-memory'] !== undefined) args.push('--mix-memory', values['mix-memory']);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`simulate on ${set.name} (seed ${seed}) exited ${code}: ${stderr}`));
      resolve({ verdict: (JSON.parse(stdout) as { goal: Verdict }).goal, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** Runs `tasks` with at most `limit` in flight; results in the tasks' order. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

/** The JSON line's spelling of a summary (snake_case, as the other benchmarks' keys). */
function snakeCase(s: SweepSummary) {
  return {
    metrics_met: s.metricsMet,
    metrics: s.metrics,
    mean_vs_local: s.meanVsLocal,
    cells_behind_local: s.cellsBehindLocal,
    cells: s.cells,
    worst_vs_local: s.worstVsLocal,
    steps_behind_local: s.stepsBehindLocal,
    steps: s.steps,
    worst_vs_centralized: s.worstVsCentralized,
    misses: s.misses,
  };
}

const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(2)} %`;

const tmp = tempDir('icosfl-bench-accuracy-');
try {
  const started = performance.now();
  const sets = prepareSets(tmp.dir);
  progress(`${sets.length} sets × seeds ${seeds.join(', ')}, ${jobs} at a time, ${values.plaintext ? 'plaintext' : 'CKKS'}, backend ${values.backend}`);
  const runs = seeds.flatMap((seed) => sets.map((set) => ({ seed, set })));
  const results = await pool(
    runs.map(({ seed, set }) => async () => {
      const r = await simulate(set, seed);
      progress(`seed ${seed} ${set.name}: ${Object.entries(r.verdict.metrics).map(([m, v]) => `${m} ${v.met ? 'met' : 'missed'}`).join(', ')} (${r.seconds.toFixed(0)} s)`);
      return { seed, group: set.group, set: set.name, verdict: r.verdict };
    }),
    jobs,
  );
  const groups = [...new Set(sets.map((s) => s.group))];
  const bySeed: Record<string, Record<string, ReturnType<typeof snakeCase>>> = {};
  for (const seed of seeds) {
    bySeed[seed] = {};
    for (const group of groups) {
      const s = summariseSweep(results.filter((r) => r.seed === seed && r.group === group));
      bySeed[seed]![group.replace('-', '_')] = snakeCase(s);
      progress(
        `seed ${seed}, ${group} sets: ${s.metricsMet}/${s.metrics} metrics meet every check; vs local: mean ${pct(s.meanVsLocal)}, ` +
          `${s.cellsBehindLocal}/${s.cells} RMSE/MAE cells behind (worst ${pct(s.worstVsLocal)}), ${s.stepsBehindLocal}/${s.steps} steps behind; ` +
          `worst vs centralised ${pct(s.worstVsCentralized.value)} (${s.worstVsCentralized.cell})`,
      );
      for (const miss of s.misses) progress(`  missed ${miss}`);
    }
  }
  const out = {
    bench: 'accuracy',
    sets: values.sets,
    set_names: sets.map((s) => s.name),
    aggregation: values.plaintext ? 'plaintext' : 'ckks',
    backend: values.backend,
    ...(values['mix-memory'] !== undefined ? { mix_memory: Number(values['mix-memory']) } : {}),
    by_seed: bySeed,
    wall_s: (performance.now() - started) / 1000,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
} finally {
  tmp.cleanup();
}
