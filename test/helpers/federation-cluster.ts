import { runBounded, type RunResult } from './run-bounded.js';
import { COORDINATOR_PUBLIC_KEY_FILE, COORDINATOR_SIGNING_KEY_FILE, loadOrCreateSigningKey, writeSigningKeyPair } from '../../common/crypto/signing-keys.js';
import { publicKeyText } from '../../common/protocol/signature.js';
import { enrollAgent } from '../../coordinator/enrolment.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { controlRequest } from '../../common/control/client.js';
import { generateFederation, loadAgentBundle, loadCoordinatorBundle, writeFederation, type AgentBundle, type CoordinatorBundle } from '../../common/crypto/index.js';
import type { RoundSummary } from '../../coordinator/round/state.js';
import type { FederationCerts } from './certs.js';
import { freePort } from './mosquitto.js';
import { DIST, REPO_ROOT, tempDir } from './paths.js';
import { sleep, waitFor, within } from './wait.js';

/**
 * A real federation on this machine for the integration tests, with the config shapes of the
 * main job (simulate/commands/federation.ts): `icosfl-coordinator serve` (embedded broker or an
 * external one by URL) and N `icosfl-agent run` daemons replaying traces from data/gcd/ with
 * replay_hold, fresh keys in a temp dir. Each process's JSON log lines are kept (per start),
 * the control sockets are asked directly or through the CLIs, and every wait is bounded.
 */
export const TRACES = join(REPO_ROOT, 'data', 'gcd');
export const METRICS = ['cpu_busy_pct', 'mem_used_pct'];
const AGENT_CLI = join(DIST, 'agent', 'cli.js');
const COORDINATOR_CLI = join(DIST, 'coordinator', 'cli.js');

export type LogLine = Record<string, unknown> & { msg?: string; component?: string; level?: number };

export interface ClusterOptions {
  agents: number;
  /** 'embedded' (the coordinator's aedes on a free loopback port) or an external broker's URL. */
  broker: 'embedded' | string;
  /** `[model]` rounds (FedAvg rounds per session). */
  rounds: number;
  /** `[federation]` keys over the defaults below (min_agents defaults to `agents`). */
  federation?: Record<string, unknown>;
  /** `[model]` keys over { metrics, rounds }. */
  model?: Record<string, unknown>;
  /** Replay: one sample every intervalMs (default 100). */
  intervalMs?: number;
  /** Share of each agent's trace that is history at start (default 0.8 each): unequal shares give unequal sample weights. */
  replayHistory?: number[];
  /** Agents' presence beat (default 1 s). */
  presenceIntervalS?: number;
  coordinatorLogLevel?: 'debug' | 'info';
  /** Signed messages as a deployment has them (coordinator key pair, every agent enrolled); default true. */
  signed?: boolean;
  /**
   * TLS with these certificates (test/helpers/certs.ts; agent ids agent-0, agent-1, …): agents
   * connect with mqtts:// and their certificate; the coordinator with its certificate (external
   * broker) or runs the embedded broker with the broker certificate.
   */
  tls?: FederationCerts;
  /** The coordinator's `[http]` section (absent: off). */
  http?: Record<string, unknown>;
  /** Sections of each agent's config over the ones written here (e.g. { prometheus: { enabled: true, port: 0 } }). */
  agentSections?: Record<string, Record<string, unknown>>;
  /** Sections of the coordinator's config over the ones written here (e.g. { http: { enabled: true, port: 0 } }). */
  coordinatorSections?: Record<string, Record<string, unknown>>;
}

/** `over`'s sections merged into `base`, key by key. */
function withSections(base: Record<string, Record<string, unknown>>, over: Record<string, Record<string, unknown>> = {}): Record<string, Record<string, unknown>> {
  const out = { ...base };
  for (const [name, kv] of Object.entries(over)) out[name] = { ...out[name], ...kv };
  return out;
}

/** The coordinator's `[federation]` defaults here: short timeouts; after the first session the next is a day away, so the service stays up to be asked. */
const FEDERATION_DEFAULTS = { round_timeout_s: 60, ack_timeout_s: 30, round_interval_s: 0.5, sessions: 0, session_interval_s: 86_400, presence_timeout_s: 20, resume_grace_s: 30 };

const toml = (sections: Record<string, Record<string, unknown>>): string =>
  Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`)
    .join('\n');

/** The environment without this host's icosfl and systemd variables (a test must not pick them up). */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ICOSFL_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'STATE_DIRECTORY', 'RUNTIME_DIRECTORY', 'LOG_LEVEL', 'LOG_FORMAT', 'JOURNAL_STREAM'].includes(k)));
}

/** What the agent daemon logs when its federation job cannot start (it keeps sampling, so it does not exit). */
const JOB_FAILED = 'federation job could not start; sampling continues';

/**
 * Every process started here and not yet gone: killed when this test process exits, however it
 * exits (a failed hook, exitAfter), so no daemon outlives its test.
 */
const LIVE = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of LIVE) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** One run of one process: its log lines as they come, its exit. */
export class ManagedProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedAt = Date.now();

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ msg: 'non-json', line });
      }
    });
    proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    LIVE.add(proc);
    this.exited = new Promise((resolve) =>
      proc.once('close', (code, signal) => {
        LIVE.delete(proc);
        resolve({ code, signal });
      }),
    );
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Log lines with this message (and every field of `where` equal). */
  find(msg: string, where: Record<string, unknown> = {}): LogLine[] {
    return this.logs.filter((l) => l.msg === msg && Object.entries(where).every(([k, v]) => l[k] === v));
  }

  /** Waits for a log line; `failOn`: a message that means it will never come (thrown at once, with the line). */
  async waitForLog(msg: string, where: Record<string, unknown> = {}, timeoutMs = 30_000, failOn?: string): Promise<LogLine> {
    let hit: LogLine | undefined;
    await waitFor(
      () => {
        const failed = failOn === undefined ? undefined : this.find(failOn)[0];
        if (failed) throw new Error(`${this.name} logged '${failOn}' while waiting for '${msg}': ${JSON.stringify(failed).slice(0, 1000)}`);
        if (!this.running && !(hit = this.find(msg, where)[0])) throw new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) without logging '${msg}' ${JSON.stringify(where)}:\n${this.tail()}`);
        return (hit = this.find(msg, where)[0]) !== undefined;
      },
      timeoutMs,
      `${this.name} to log '${msg}' ${JSON.stringify(where)}`,
      25,
    );
    return hit!;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc.kill(sig);
  }

  /** SIGKILL, and waits (bounded) for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await within(this.exited, 10_000, `${this.name} to exit after SIGKILL`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 6000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    try {
      await within(this.exited, graceMs, `${this.name} to exit after SIGTERM`);
    } catch {
      await this.kill();
    }
  }

  /** The last log lines and stderr, for a failure message. */
  tail(n = 25): string {
    return [...this.logs.slice(-n).map((l) => JSON.stringify(l).slice(0, 400)), this.stderr.slice(-2000)].join('\n');
  }
}

export interface AgentPaths {
  id: string;
  dir: string;
  config: string;
  socket: string;
}

export class FederationCluster {
  readonly dir: string;
  readonly #cleanup: () => void;
  readonly coordinatorConfig: string;
  readonly coordinatorSocket: string;
  readonly coordinatorStateDir: string;
  readonly agents: AgentPaths[];
  readonly brokerUrl: string;
  readonly federation: string;
  readonly agentBundle: AgentBundle;
  readonly coordinatorBundle: CoordinatorBundle;
  /** Every start of each process, oldest first. */
  readonly runs = new Map<string, ManagedProcess[]>();

  private constructor(init: {
    dir: string;
    cleanup: () => void;
    coordinatorConfig: string;
    coordinatorSocket: string;
    coordinatorStateDir: string;
    agents: AgentPaths[];
    brokerUrl: string;
    federation: string;
    agentBundle: AgentBundle;
    coordinatorBundle: CoordinatorBundle;
  }) {
    this.dir = init.dir;
    this.#cleanup = init.cleanup;
    this.coordinatorConfig = init.coordinatorConfig;
    this.coordinatorSocket = init.coordinatorSocket;
    this.coordinatorStateDir = init.coordinatorStateDir;
    this.agents = init.agents;
    this.brokerUrl = init.brokerUrl;
    this.federation = init.federation;
    this.agentBundle = init.agentBundle;
    this.coordinatorBundle = init.coordinatorBundle;
  }

  /** Keys and config files in a fresh temp dir; nothing is started yet. */
  static async create(o: ClusterOptions): Promise<FederationCluster> {
    const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort();
    if (o.agents > traces.length) throw new RangeError(`at most ${traces.length} agents (one trace each), got ${o.agents}`);
    const { dir, cleanup } = tempDir('icosfl-fed-');
    try {
      const federation = `test-${Date.now().toString(36)}`;
      const keys = join(dir, 'keys');
      const { agentPath, coordinatorPath } = writeFederation(keys, await generateFederation({ federationId: federation }));
      const signed = o.signed ?? true;
      const enrolled = join(keys, 'enrolled-agents.json');
      if (signed) writeSigningKeyPair(join(keys, COORDINATOR_SIGNING_KEY_FILE), join(keys, COORDINATOR_PUBLIC_KEY_FILE));
      const signing = signed ? { signing_key: join(keys, COORDINATOR_SIGNING_KEY_FILE), enrolled_agents: enrolled } : {};
      const embeddedPort = o.broker === 'embedded' ? await freePort() : 0;
      const brokerUrl = o.broker === 'embedded' ? `${o.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${embeddedPort}` : o.broker;
      const coordinatorTls = !o.tls ? {} : o.broker === 'embedded' ? { ca: o.tls.ca, cert: o.tls.broker.cert, key: o.tls.broker.key } : { ca: o.tls.ca, cert: o.tls.coordinator.cert, key: o.tls.coordinator.key };
      const intervalMs = o.intervalMs ?? 100;
      const coordDir = join(dir, 'coordinator');
      mkdirSync(coordDir, { recursive: true });
      const coordinatorConfig = join(coordDir, 'coordinator.toml');
      writeFileSync(
        coordinatorConfig,
        toml(withSections({
          coordinator: { state_dir: join(coordDir, 'state'), runtime_dir: join(coordDir, 'run'), keys: coordinatorPath, codec: 'ckks', log_level: o.coordinatorLogLevel ?? 'debug', ...signing },
          broker: { ...(o.broker === 'embedded' ? { url: 'embedded', embedded_host: '127.0.0.1', embedded_port: embeddedPort } : { url: o.broker }), ...coordinatorTls },
          federation: { min_agents: o.agents, ...FEDERATION_DEFAULTS, ...o.federation },
          model: { metrics: METRICS, rounds: o.rounds, ...o.model },
          ...(o.http ? { http: o.http } : {}),
        }, o.coordinatorSections)),
      );
      const agents: AgentPaths[] = [];
      for (let i = 0; i < o.agents; i++) {
        const a = join(dir, `agent-${i}`);
        mkdirSync(a, { recursive: true });
        const config = join(a, 'agent.toml');
        if (signed) enrollAgent(enrolled, `agent-${i}`, publicKeyText(loadOrCreateSigningKey(join(a, 'state', 'agent-signing.key')).key));
        writeFileSync(
          config,
          toml(withSections({
            agent: { state_dir: join(a, 'state'), runtime_dir: join(a, 'run'), log_level: 'info' },
            sampler: { interval_ms: intervalMs, metrics: METRICS, ring_capacity: 4096, replay_file: join(TRACES, traces[i]!), replay_history: o.replayHistory?.[i] ?? 0.8, replay_hold: true },
            trainer: { forecast_interval_s: intervalMs / 1000 },
            federation: {
              enabled: true,
              broker: brokerUrl,
              keys: agentPath,
              agent_id: `agent-${i}`,
              ...(signed ? { coordinator_key: join(keys, COORDINATOR_PUBLIC_KEY_FILE) } : {}),
              codec: 'ckks',
              presence_interval_s: o.presenceIntervalS ?? 1,
              reconnect_min_ms: 100,
              reconnect_max_ms: 1000,
              ...(o.tls ? { ca: o.tls.ca, cert: o.tls.agent(`agent-${i}`).cert, key: o.tls.agent(`agent-${i}`).key } : {}),
            },
          }, o.agentSections)),
        );
        agents.push({ id: `agent-${i}`, dir: a, config, socket: join(a, 'run', 'agent.sock') });
      }
      return new FederationCluster({
        dir,
        cleanup,
        coordinatorConfig,
        coordinatorSocket: join(coordDir, 'run', 'coordinator.sock'),
        coordinatorStateDir: join(coordDir, 'state'),
        agents,
        brokerUrl,
        federation,
        agentBundle: loadAgentBundle(agentPath),
        coordinatorBundle: loadCoordinatorBundle(coordinatorPath),
      });
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  #spawn(name: string, args: string[]): ManagedProcess {
    const p = new ManagedProcess(name, spawn(process.execPath, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
    const list = this.runs.get(name) ?? [];
    list.push(p);
    this.runs.set(name, list);
    return p;
  }

  /** The newest run of a process. */
  current(name: string): ManagedProcess {
    const p = this.runs.get(name)?.at(-1);
    if (!p) throw new Error(`${name} was never started`);
    return p;
  }

  /** Starts the coordinator and waits for 'coordinator ready'. */
  async startCoordinator(timeoutMs = 20_000): Promise<ManagedProcess> {
    const p = this.#spawn('coordinator', [COORDINATOR_CLI, 'serve', '--config', this.coordinatorConfig]);
    await p.waitForLog('coordinator ready', {}, timeoutMs);
    return p;
  }

  get coordinator(): ManagedProcess {
    return this.current('coordinator');
  }

  /** Starts agent i and waits until it joined the federation (its broker connection is up). */
  async startAgent(i: number, timeoutMs = 30_000): Promise<ManagedProcess> {
    const a = this.agents[i]!;
    const p = this.#spawn(a.id, [AGENT_CLI, 'run', '--config', a.config]);
    await p.waitForLog('federation joined', {}, timeoutMs, JOB_FAILED);
    return p;
  }

  async startAgents(timeoutMs = 40_000): Promise<void> {
    const started = this.agents.map((a) => this.#spawn(a.id, [AGENT_CLI, 'run', '--config', a.config]));
    await Promise.all(started.map((p) => p.waitForLog('federation joined', {}, timeoutMs, JOB_FAILED)));
  }

  agent(i: number): ManagedProcess {
    return this.current(this.agents[i]!.id);
  }

  /** One control-socket request to the coordinator. */
  async ask(cmd: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return (await controlRequest(this.coordinatorSocket, { cmd, ...extra }, 5000, { name: 'icosfl-coordinator', unit: 'icosfl-coordinator' })) as Record<string, unknown>;
  }

  async status(): Promise<CoordinatorStatus> {
    return (await this.ask('status')) as unknown as CoordinatorStatus;
  }

  async rounds(): Promise<RoundSummary[]> {
    return ((await this.ask('rounds')) as { rounds: RoundSummary[] }).rounds;
  }

  async agentStatus(i: number): Promise<Record<string, unknown>> {
    return (await controlRequest(this.agents[i]!.socket, { cmd: 'status' }, 5000)) as Record<string, unknown>;
  }

  /** Starts the agents and waits until session 1's final round completed; a failure carries every process's log. */
  async runFirstSession(timeoutMs: number): Promise<void> {
    try {
      await this.startAgents();
      await this.waitForRound((r) => r.session === 1 && r.phase === 'final' && r.outcome === 'completed', timeoutMs, 'the final round to complete');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.dump()}`);
    }
  }

  /** Waits until the rounds listing has a round matching `pred`; returns it. */
  async waitForRound(pred: (r: RoundSummary) => boolean, timeoutMs: number, what: string): Promise<RoundSummary> {
    let hit: RoundSummary | undefined;
    await waitFor(
      async () => {
        if (!this.coordinator.running) throw new Error(`the coordinator exited while waiting for ${what}:\n${this.coordinator.tail()}`);
        try {
          hit = (await this.rounds()).find(pred);
        } catch {
          return false; // restarting
        }
        return hit !== undefined;
      },
      timeoutMs,
      what,
      100,
    );
    return hit!;
  }

  /** Waits until the coordinator's round in progress matches `pred`. */
  async waitForCurrent(pred: (r: CurrentRound) => boolean, timeoutMs: number, what: string): Promise<CurrentRound> {
    let hit: CurrentRound | undefined;
    await waitFor(
      async () => {
        if (!this.coordinator.running) throw new Error(`the coordinator exited while waiting for ${what}:\n${this.coordinator.tail()}`);
        let round: CurrentRound | null;
        try {
          round = (await this.status()).round;
        } catch {
          return false;
        }
        if (round && pred(round)) hit = round;
        return hit !== undefined;
      },
      timeoutMs,
      what,
      25,
    );
    return hit!;
  }

  /**
   * Holds a FedAvg round open: once FedAvg step `afterStep` completed, agent `i` is frozen
   * (SIGSTOP: its connection stays up and it still counts as online until presence_timeout_s),
   * so the next round collects every other agent's update and then waits for it. Resolves with
   * that round once the others' updates are in; SIGCONT lets the agent go on.
   */
  async holdRound(i: number, afterStep: number, timeoutMs = 60_000): Promise<CurrentRound> {
    await this.waitForRound((r) => r.phase === 'fedavg' && r.step === afterStep && r.outcome === 'completed', timeoutMs, `FedAvg step ${afterStep} to complete`);
    this.agent(i).signal('SIGSTOP');
    const n = this.agents.length;
    const step = afterStep + 1;
    return this.waitForCurrent(
      (r) => {
        // Frozen after it had answered (a test process slower than round_interval_s): say so at once.
        const past = r.phase === 'final' || (r.phase === 'fedavg' && (r.step > step || (r.step === step && (r.updates === n || r.status !== 'collecting'))));
        if (past) throw new Error(`${this.agents[i]!.id} was frozen too late: FedAvg step ${step} got all ${n} updates (raise round_interval_s)`);
        return r.phase === 'fedavg' && r.step === step && r.status === 'collecting' && r.updates === n - 1 && r.expected === n;
      },
      timeoutMs,
      `FedAvg step ${step} to hold ${n - 1} of ${n} updates`,
    );
  }

  /** Runs a CLI command to completion (bounded); stdout and the exit code. */
  cli(which: 'agent' | 'coordinator', args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return runBounded(process.execPath, [which === 'agent' ? AGENT_CLI : COORDINATOR_CLI, ...args], timeoutMs, { env: cleanEnv() });
  }

  /** Every run's logs of every process, for a failure message. */
  dump(n = 15): string {
    return [...this.runs.entries()].flatMap(([name, runs]) => runs.map((r, k) => `--- ${name} (run ${k + 1}, ${r.running ? 'running' : `exited ${r.proc.exitCode ?? r.proc.signalCode}`})\n${r.tail(n)}`)).join('\n');
  }

  /** Agents first (they say goodbye through the broker), then the coordinator; then the temp dir goes. */
  async close(): Promise<void> {
    const all = [...this.runs.values()].flat();
    await Promise.all(all.filter((p) => p.name !== 'coordinator').map((p) => p.stop()));
    await Promise.all(all.filter((p) => p.name === 'coordinator').map((p) => p.stop()));
    await sleep(50);
    this.#cleanup();
  }
}

export interface CurrentRound {
  round: number;
  session: number;
  phase: string;
  step: number;
  status: string;
  updates: number;
  expected: number;
  acks: number;
}

export interface CoordinatorStatus {
  ready: boolean;
  round: CurrentRound | null;
  done: boolean;
  roundsDone: number;
  agents: { online: number; eligible: number; known: number };
  rejected: Record<string, number>;
  messenger: { rejected: Record<string, number>; duplicates: number; expiredSets: number; pendingBytes: number; received: Record<string, number> } | null;
  broker: { connected: boolean; reconnects: number } | null;
}
