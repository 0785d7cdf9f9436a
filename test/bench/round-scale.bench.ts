import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../common/control/client.js';
import { AgentCipher, DEFAULT_MAX_ROUND_SAMPLES, generateFederation, writeFederation } from '../../common/crypto/index.js';
import { DEFAULT_FEDERATION_MODEL, modelParamCount } from '../../common/protocol/federation-model.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { DIST, tempDir } from '../helpers/paths.js';
import { startLightAgents, type LightAgents } from './light-agents.js';

/**
 * round-scale: the real coordinator process (`node dist/coordinator/cli.js serve`, an external
 * Mosquitto broker) against N light simulated agents (light-agents.ts: MQTT connections that send
 * one pre-encrypted update of the default model per FedAvg round and acknowledge each global, but
 * never train or decrypt), for BENCH_ROUNDS rounds; then the same with `codec = "plaintext"`
 * (float32 bodies, no keys). What a round costs the coordinator beyond the agents' own work:
 * protocol, journal (one fdatasync per durable event), summing, broker.
 *
 *   BENCH_AGENTS=10,100,1000 BENCH_ROUNDS=3 npm run bench -- round-scale
 *
 * One JSON line per N on stdout (progress and a phase breakdown on stderr):
 *   round_overhead_s    median over rounds of the coordinator's RoundSummary closedAt − announcedAt
 *                       (control socket `rounds`), announcement to the last acknowledgement
 *   plaintext_round_s   the same for the plaintext run; he_vs_plaintext = the ratio of the two
 *   coordinator_rss_mb  peak RSS (VmHWM) of the coordinator process in the CKKS run
 *   bytes_per_round     median bytesIn + bytesOut of a CKKS round
 * Goals: 1,000 agents with round_overhead_s ≤ 10 on 2 cores, he_vs_plaintext ≤ 1.1, RSS ≤ 200 MB.
 *
 * BENCH_SHARDS=S (≥ 2; default 0, none): the CKKS run gets `[federation] shards = S` and S
 * `icosfl-coordinator aggregate --shard K/S` worker processes beside serve (their CPU is reported
 * with the coordinator's); the plaintext run, which cannot shard, stays unsharded. Then
 * coordinator_rss_mb is serve's and workers_rss_mb the largest worker's.
 *
 * BENCH_PLAINTEXT=0 skips the plaintext run (plaintext_round_s and he_vs_plaintext are then null).
 *
 * Other knobs: BENCH_AGENT_PROCS (light-agent processes; default one per 500 agents, at most 4),
 * BENCH_TIMEOUT_S (per coordinator run, default 600), BENCH_CPU_PROF=DIR (the coordinator runs
 * with --cpu-prof into DIR), BENCH_COORDINATOR_NODE_ARGS (more node flags for it, e.g. --trace-gc),
 * BENCH_COORDINATOR_LOG_LEVEL (default info), BENCH_MOSQUITTO_CONFIG (the broker config lines
 * below, ';'-separated; '' for Mosquitto's defaults), BENCH_KEEP=1 (keep the temp dir: coordinator logs, configs).
 *
 * Production note (the broker): Mosquitto's defaults are 20 QoS 1 messages in flight and 1,000
 * queued per client. The coordinator is one client that receives every agent's update, ack and
 * presence, acknowledging each only once it is journaled, so with hundreds of agents answering an
 * announcement at once its queue passes 1,000 and Mosquitto silently drops the rest (the round
 * then waits for its deadline). This benchmark's broker runs with
 *   max_inflight_messages 100
 *   max_queued_messages 100000
 * and a broker in front of a large federation needs the same (or a per-listener equivalent).
 */
const AGENTS = (process.env.BENCH_AGENTS ?? '100').split(',').map((s) => Number(s.trim()));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 600);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const KEEP = process.env.BENCH_KEEP === '1';
/** n_k of every light agent: 100, or less where the weight cap of the largest N is below it (D4: 83 at 10,000). */
let SAMPLES = 100;
const WINDOWS = 100;
const MOSQUITTO_CONFIG = (process.env.BENCH_MOSQUITTO_CONFIG ?? 'max_inflight_messages 100;max_queued_messages 100000').split(';').map((s) => s.trim()).filter(Boolean);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 0);
if (!Number.isInteger(SHARDS) || SHARDS < 0 || SHARDS > 64) throw new RangeError(`BENCH_SHARDS must be an integer 0 … 64, got ${process.env.BENCH_SHARDS}`);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

for (const n of AGENTS) if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new RangeError(`BENCH_AGENTS: each N must be an integer 1 … 10000, got ${process.env.BENCH_AGENTS}`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100) throw new RangeError(`BENCH_ROUNDS must be an integer 1 … 100, got ${process.env.BENCH_ROUNDS}`);

function log(msg: string): void {
  process.stderr.write(`[round-scale] ${msg}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN; // exited
  }
}

/** utime + stime of a process, in seconds. */
function cpuS(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** The 12 mappings with the most resident memory (/proc/<pid>/smaps), for BENCH_SMAPS=1. */
function largestMappings(pid: number): string {
  const rows: { name: string; kb: number }[] = [];
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1] || '[anon]';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) rows.push({ name, kb: Number(rss[1]) });
  }
  const total = rows.reduce((a, r) => a + r.kb, 0);
  return [`  total ${(total / 1024).toFixed(1)} MB in ${rows.length} mappings`, ...rows.sort((a, b) => b.kb - a.kb).slice(0, 12).map((r) => `  ${(r.kb / 1024).toFixed(1).padStart(7)} MB ${r.name}`)].join('\n');
}

/** CPU seconds the whole machine was busy (all cores; /proc/stat), to tell what other processes took. */
function machineBusyS(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
}

/** The broker's pid (test/helpers/mosquitto.ts does not expose it): the process started with its config. */
function mosquittoPid(broker: MosquittoBroker): number | undefined {
  const config = join(broker.dir, 'mosquitto.conf');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(config)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

const toml = (sections: Record<string, Record<string, unknown>>) =>
  Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`)
    .join('\n');

interface RoundRow {
  round: number;
  phase: string;
  outcome: string;
  reason: string | null;
  participants: number;
  acks: number;
  bytesIn: number;
  bytesOut: number;
  announcedAt: number;
  closedAt: number;
}

interface RunResult {
  rounds: RoundRow[];
  rssMb: number;
  /** Largest peak RSS of the aggregator workers (0 without shards). */
  workersRssMb: number;
  workersCpuS: number;
  coordinatorCpuS: number;
  brokerCpuS: number;
  agentCpuS: number;
  /** Busy CPU seconds of the whole machine over the rounds (the rest is other processes and the kernel). */
  machineS: number;
  wallS: number;
  phases: { collect: number; sum: number; publishAck: number } | null;
  rejected: Record<string, number>;
}

/** Median per-round phase times from the coordinator's info log (announced → collection closed → aggregated → completed). */
function phaseTimes(logFile: string, rounds: number[]): RunResult['phases'] {
  const at = new Map<number, Record<string, number>>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let j: { msg?: string; round?: number; time?: string };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    if (typeof j.round !== 'number' || !j.time || !j.msg) continue;
    const r = at.get(j.round) ?? {};
    r[j.msg] ??= Date.parse(j.time);
    at.set(j.round, r);
  }
  const collect: number[] = [];
  const sum: number[] = [];
  const publishAck: number[] = [];
  for (const round of rounds) {
    const r = at.get(round);
    if (!r || !r['round announced'] || !r['collection closed'] || !r['aggregated'] || !r['round completed']) return null;
    collect.push(r['collection closed'] - r['round announced']);
    sum.push(r['aggregated'] - r['collection closed']);
    publishAck.push(r['round completed'] - r['aggregated']);
  }
  return { collect: median(collect) / 1000, sum: median(sum) / 1000, publishAck: median(publishAck) / 1000 };
}

async function runCoordinator(opts: { dir: string; n: number; codec: 'ckks' | 'plaintext'; federation: string; keys: string; bodiesFile: string; bodyBytes: number; processes: number }): Promise<RunResult> {
  const { n, codec } = opts;
  const shards = codec === 'ckks' && SHARDS >= 2 ? SHARDS : 0;
  const dir = join(opts.dir, `${codec}-${n}`);
  mkdirSync(dir, { recursive: true });
  const broker = await startMosquitto({ extraConfig: MOSQUITTO_CONFIG });
  const brokerPid = mosquittoPid(broker);
  const config = join(dir, 'coordinator.toml');
  writeFileSync(
    config,
    toml({
      coordinator: { state_dir: join(dir, 'state'), runtime_dir: join(dir, 'run'), keys: opts.keys, codec, log_level: process.env.BENCH_COORDINATOR_LOG_LEVEL ?? 'info' },
      broker: { url: broker.url, client_id: 'icosfl-coordinator' },
      federation: { ...(codec === 'plaintext' ? { id: opts.federation } : {}), min_agents: n, sessions: 0, round_interval_s: 0.5, round_timeout_s: 300, ack_timeout_s: 120, presence_timeout_s: 600, shards },
      // Enough FedAvg steps that the session's final round never comes within the measured rounds.
      model: { ridge_features: 0, rounds: ROUNDS + 10 },
    }),
  );
  const logFile = join(dir, 'coordinator.log');
  const out = createWriteStream(logFile);
  const execArgv = [
    ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=coordinator-${codec}-${n}-${Date.now()}.cpuprofile`] : []),
    ...(process.env.BENCH_COORDINATOR_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && k !== 'NOTIFY_SOCKET' && k !== 'WATCHDOG_USEC' && k !== 'LOG_LEVEL'));
  const child: ChildProcess = spawn(process.execPath, [...execArgv, join(DIST, 'coordinator', 'cli.js'), 'serve', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const pid = child.pid!;
  const socket = join(dir, 'run', 'coordinator.sock');
  const ask = (cmd: string) => controlRequest(socket, { cmd }, 10_000, { name: 'icosfl-coordinator', unit: 'icosfl-coordinator' });
  const alive = () => {
    if (child.exitCode !== null) throw new Error(`the coordinator exited with code ${child.exitCode}; see ${logFile}${KEEP ? '' : ' (BENCH_KEEP=1 keeps it)'}`);
  };
  let agents: LightAgents | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const deadline = Date.now() + TIMEOUT_S * 1000;
  // The aggregator workers, one process per shard, logging beside serve.
  const workers: ChildProcess[] = [];
  const workersUp: Promise<void>[] = [];
  for (let k = 0; k < shards; k++) {
    const w = spawn(process.execPath, [join(DIST, 'coordinator', 'cli.js'), 'aggregate', '--shard', `${k}/${shards}`, '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    workers.push(w);
    workersUp.push(
      new Promise<void>((resolve, reject) => {
        let seen = '';
        w.stdout!.on('data', (b: Buffer) => {
          seen += b.toString();
          if (seen.includes('aggregator worker running')) resolve();
          if (seen.length > 65536) seen = seen.slice(-4096);
        });
        w.on('exit', (code) => reject(new Error(`aggregator worker ${k}/${shards} exited with code ${code}; see ${logFile}`)));
      }),
    );
    w.stdout!.pipe(out, { end: false });
    w.stderr!.pipe(out, { end: false });
  }
  try {
    await Promise.all(workersUp.map((p) => Promise.race([p, sleep(60_000).then(() => Promise.reject(new Error('an aggregator worker did not start within 60 s')))])));
    if (shards > 0) log(`${codec} N=${n}: ${shards} aggregator workers running`);
    for (;;) {
      alive();
      if (Date.now() > deadline) throw new Error('the coordinator did not get ready');
      try {
        if (((await ask('status')) as { ready?: boolean }).ready) break;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    const rssReady = statusKb(pid, 'VmRSS') / 1024;
    const t0 = performance.now();
    agents = await startLightAgents({ url: broker.url, federation: opts.federation, count: n, processes: opts.processes, bodiesFile: opts.bodiesFile, bodyBytes: opts.bodyBytes, samples: SAMPLES, windows: WINDOWS, readyTimeoutMs: 300_000 });
    log(`${codec} N=${n}: ${n} light agents connected in ${((performance.now() - t0) / 1000).toFixed(1)} s over ${opts.processes} process(es); coordinator RSS ${rssReady.toFixed(0)} MB when ready, ${(statusKb(pid, 'VmRSS') / 1024).toFixed(0)} MB with the agents online`);
    const c0 = cpuS(pid);
    const wc0 = workers.map((w) => cpuS(w.pid));
    const b0 = cpuS(brokerPid);
    const m0 = machineBusyS();
    const a0 = await agents.stats();
    const w0 = performance.now();
    // VmHWM is the peak; this says when it came (which round, how far into it).
    let rssPeak = { mb: 0, at: 0 };
    sampler = setInterval(() => {
      const mb = statusKb(pid, 'VmRSS') / 1024;
      if (mb > rssPeak.mb) rssPeak = { mb, at: Date.now() };
    }, 50);
    let rows: RoundRow[] = [];
    let shown = 0;
    for (;;) {
      alive();
      if (Date.now() > deadline) throw new Error(`${ROUNDS} rounds did not complete within BENCH_TIMEOUT_S=${TIMEOUT_S} (${rows.length} done)`);
      await sleep(500);
      try {
        rows = ((await ask('rounds')) as { rounds: RoundRow[] }).rounds;
      } catch {
        continue;
      }
      const bad = rows.find((r) => r.outcome !== 'completed');
      if (bad) throw new Error(`round ${bad.round} ${bad.outcome}: ${bad.reason}`);
      for (const r of rows.slice(shown)) {
        log(`${codec} N=${n}: round ${r.round} ${r.phase} ${((r.closedAt - r.announcedAt) / 1000).toFixed(2)} s, ${r.participants} updates, ${r.acks} acks, ${r.bytesIn + r.bytesOut} bytes`);
        if (r.participants !== n || r.acks !== n) log(`  warning: ${n} agents, but ${r.participants} updates and ${r.acks} acks`);
      }
      shown = rows.length;
      rows = rows.filter((r) => r.phase === 'fedavg');
      if (rows.length >= ROUNDS) break;
    }
    clearInterval(sampler);
    const wallS = (performance.now() - w0) / 1000;
    const peakRound = rows.find((r) => r.announcedAt <= rssPeak.at && rssPeak.at <= r.closedAt + 500);
    log(`${codec} N=${n}: coordinator RSS peak ${rssPeak.mb.toFixed(0)} MB (sampled every 50 ms) ${peakRound ? `${((rssPeak.at - peakRound.announcedAt) / 1000).toFixed(2)} s into round ${peakRound.round}` : 'between rounds'}`);
    const coordinatorCpuS = cpuS(pid) - c0;
    const workersCpuS = workers.reduce((a, w, i) => a + (cpuS(w.pid) - wc0[i]!), 0);
    const workersRssMb = Math.max(0, ...workers.map((w) => statusKb(w.pid!, 'VmHWM') / 1024));
    const brokerCpuS = cpuS(brokerPid) - b0;
    const machineS = machineBusyS() - m0;
    const rssMb = statusKb(pid, 'VmHWM') / 1024;
    if (process.env.BENCH_SMAPS === '1') log(`${codec} N=${n}: coordinator's largest mappings now:\n${largestMappings(pid)}`);
    const status = (await ask('status')) as { rejected?: Record<string, number> };
    const a1 = await agents.stats();
    if (a1.errors > 0 || a1.capTooSmall > 0) log(`  light agents: ${a1.errors} errors (${a1.firstErrors.join('; ')}), ${a1.capTooSmall} announcements with weightCap < ${SAMPLES}`);
    const measured = rows.slice(0, ROUNDS);
    return {
      rounds: measured,
      rssMb,
      workersRssMb,
      workersCpuS,
      coordinatorCpuS,
      brokerCpuS,
      agentCpuS: a1.cpuUserS + a1.cpuSystemS - (a0.cpuUserS + a0.cpuSystemS),
      machineS,
      wallS,
      phases: null,
      rejected: status.rejected ?? {},
    };
  } finally {
    clearInterval(sampler);
    if (agents) await agents.stop().catch((err: Error) => log(`stopping the light agents: ${err.message}`));
    for (const w of workers) if (w.exitCode === null) w.kill('SIGTERM');
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(10_000).then(() => 'late' as const)]);
    if (code === 'late') child.kill('SIGKILL');
    await new Promise<void>((r) => out.end(() => r()));
    await broker.cleanup();
  }
}

async function main(): Promise<void> {
  const { dir, cleanup } = tempDir('icosfl-bench-round-scale-');
  const federation = 'round-scale';
  const params = modelParamCount(DEFAULT_FEDERATION_MODEL);
  const maxN = Math.max(...AGENTS);
  SAMPLES = Math.min(100, Math.floor(DEFAULT_MAX_ROUND_SAMPLES / Math.ceil(1.25 * maxN)));
  try {
    const fed = await generateFederation({ federationId: federation });
    const keyDir = join(dir, 'keys');
    writeFederation(keyDir, fed);
    const cipher = await AgentCipher.create(fed.agent);
    // One body per agent, encrypted once (a fresh seed each), reused every round.
    const t0 = performance.now();
    const weights = Array.from({ length: maxN }, () => Float32Array.from({ length: params }, () => Math.random() * 2 - 1));
    const ckks = weights.map((w) => cipher.encryptUpdate(w, SAMPLES));
    cipher.dispose();
    const ckksBytes = ckks[0]!.length;
    const ckksFile = join(dir, 'bodies-ckks.bin');
    writeFileSync(ckksFile, Buffer.concat(ckks));
    const plainFile = join(dir, 'bodies-plaintext.bin');
    writeFileSync(plainFile, Buffer.concat(weights.map((w) => Buffer.from(w.buffer, w.byteOffset, w.byteLength))));
    log(`${maxN} updates of ${params} params encrypted in ${((performance.now() - t0) / 1000).toFixed(1)} s (${ckksBytes} bytes each; plaintext ${params * 4})`);

    for (const n of AGENTS) {
      const processes = Number(process.env.BENCH_AGENT_PROCS ?? Math.min(4, Math.ceil(n / 500)));
      const common = { dir, n, federation, keys: join(keyDir, 'coordinator.json'), processes };
      const he = await runCoordinator({ ...common, codec: 'ckks', bodiesFile: ckksFile, bodyBytes: ckksBytes });
      const heLog = join(dir, `ckks-${n}`, 'coordinator.log');
      he.phases = phaseTimes(heLog, he.rounds.map((r) => r.round));
      const plain = process.env.BENCH_PLAINTEXT === '0' ? undefined : await runCoordinator({ ...common, codec: 'plaintext', bodiesFile: plainFile, bodyBytes: params * 4 });
      if (plain) plain.phases = phaseTimes(join(dir, `plaintext-${n}`, 'coordinator.log'), plain.rounds.map((r) => r.round));
      const heS = median(he.rounds.map((r) => (r.closedAt - r.announcedAt) / 1000));
      const plainS = plain ? median(plain.rounds.map((r) => (r.closedAt - r.announcedAt) / 1000)) : null;
      for (const [name, r] of [['ckks', he], ...(plain ? [['plaintext', plain] as const] : [])] as const) {
        const ph = r.phases ? `collect ${r.phases.collect.toFixed(2)} s, sum ${r.phases.sum.toFixed(2)} s, publish+acks ${r.phases.publishAck.toFixed(2)} s` : 'phases: not in the log';
        const cores = (x: number) => `${x.toFixed(1)} s (${((x / r.wallS) * 100).toFixed(0)} % of a core)`;
        log(`${name} N=${n}: median round ${median(r.rounds.map((x) => (x.closedAt - x.announcedAt) / 1000)).toFixed(2)} s (${ph}); over ${r.wallS.toFixed(1)} s of rounds CPU: coordinator ${cores(r.coordinatorCpuS)}, aggregator workers ${cores(r.workersCpuS)}, mosquitto ${cores(r.brokerCpuS)}, light agents ${cores(r.agentCpuS)}, everything else ${cores(r.machineS - r.coordinatorCpuS - r.workersCpuS - r.brokerCpuS - r.agentCpuS)}; rejected ${JSON.stringify(r.rejected)}`);
      }
      process.stdout.write(
        JSON.stringify({
          bench: 'round-scale',
          agents: n,
          rounds: ROUNDS,
          round_overhead_s: heS,
          plaintext_round_s: plainS,
          he_vs_plaintext: plainS === null ? null : heS / plainS,
          coordinator_rss_mb: Math.round(he.rssMb * 10) / 10,
          shards: SHARDS >= 2 ? SHARDS : 0,
          ...(SHARDS >= 2 ? { workers_rss_mb: Math.round(he.workersRssMb * 10) / 10 } : {}),
          bytes_per_round: median(he.rounds.map((r) => r.bytesIn + r.bytesOut)),
        }) + '\n',
      );
    }
  } finally {
    if (KEEP) log(`kept ${dir}`);
    else cleanup();
  }
}

await main();
