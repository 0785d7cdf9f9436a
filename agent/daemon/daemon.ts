import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { IcosflError } from '../../common/errors.js';
import { errnoWords } from '../../common/system-errors.js';
import { exitCode } from '../../common/exit-codes.js';
import { createLogger, resolveLogOutput, setRootLogger, warnOnBadLogFormat, type Logger } from '../../common/log.js';
import { stdoutLogDestination, type LogDestinationStats } from '../../common/log-destination.js';
import { storageHealth } from '../../common/storage-health.js';
import type { MetricRing } from '../../native/ring.js';
import { METRICS } from '../collectors/index.js';
import { loadAgentConfig, type LoadOptions } from '../config/load.js';
import type { AgentConfig } from '../config/schema.js';
import type { TrainingJob } from '../trainer/job.js';
import { makeDir, openStateRing, RING_FILE } from '../sampler/open-ring.js';
import { recentSamples } from '../sampler/recent-samples.js';
import { Sampler } from '../sampler/sampler.js';
import { mainStallMsForPing } from '../sampler/watchdog-gate.js';
import { diffConfig, restartEffects } from './config-diff.js';
import { controlSocketPath } from './control-client.js';
import { ControlServer, type ControlHandler } from '../../common/control/server.js';
import { createMetricsRegistry } from './metrics-registry.js';
import { MetricsServer } from './metrics-server.js';
import { notify, onNotifyError, watchdogPingMs } from './notifier.js';

/**
 * `icosfl-agent run`: the daemon's lifecycle. Start-up order matters for systemd Type=notify:
 * config (a bad one exits 78 before anything is touched) → ring opened (locked) → control
 * socket → sampler → first sample stored → READY=1. Shutdown (SIGTERM/SIGINT) reverses it:
 * STOPPING=1 → sampler stopped and its last sample stored → training job stopped → ring closed
 * → sockets closed, within SHUTDOWN_BUDGET_MS. SIGHUP reloads the config (config-diff.ts says
 * which keys apply live). The training job is loaded with import() only when training is enabled
 * and the ring holds enough samples for a first round, so tfjs and node-seal stay out of a
 * sampling-only (or still filling) daemon.
 */
const STATUS_EVERY_MS = 10_000;
/** systemd's default TimeoutStopSec is 90 s; ours must hold SIGTERM to exit within 5 s. */
const SHUTDOWN_BUDGET_MS = 4_500;
const TRAINER_STOP_MS = 1_500;
/** Control commands a training job registers (job.ts); answered by trainerAbsence() while there is none. */
const TRAINER_COMMANDS = ['predict'] as const;

/**
 * The training job (local-only) or the federation job (which trains inside the federation's
 * rounds), with the handlers and gauges it registered, removed again when it stops (a reload
 * restarts it).
 */
interface JobSlot {
  kind: 'training' | 'federation';
  job: Pick<TrainingJob, 'stop' | 'status'>;
  handlers: string[];
  metrics: string[];
}

export class Daemon {
  private config: AgentConfig;
  private readonly rootLog: Logger;
  private readonly logStats: LogDestinationStats;
  private readonly loggers = new Map<string, Logger>();
  private readonly log: Logger;
  private ring: MetricRing | undefined;
  private sampler: Sampler | undefined;
  private control: ControlServer | undefined;
  private registry: Registry | undefined;
  private metricsServer: MetricsServer | undefined;
  /** Why the configured Prometheus endpoint is not listening (null: listening or not configured). */
  private prometheusError: string | null = null;
  private trainer: JobSlot | undefined;
  private trainerWait: (() => void) | undefined;
  private trainerStartError: string | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  private ready = false;
  private lastReload: { at: string; ok: boolean; message: string } | null = null;
  private shuttingDown: Promise<number> | undefined;
  private resolveExit!: (code: number) => void;
  readonly exited = new Promise<number>((resolve) => (this.resolveExit = resolve));

  constructor(private readonly loadOptions: LoadOptions) {
    this.config = loadAgentConfig(loadOptions);
    // On stdout, which journald stores; JSON there, readable lines on a terminal (common/log.ts).
    // A full disk under a stdout file is recorded, not fatal (common/log-destination.ts).
    const destination = stdoutLogDestination();
    this.logStats = destination.stats;
    this.rootLog = createLogger({ level: this.config.agent.log_level, output: resolveLogOutput(this.config.agent.log_format, 1), destination: destination.stream });
    setRootLogger(this.rootLog);
    warnOnBadLogFormat(this.rootLog);
    this.log = this.logger('daemon');
    const notifyLog = this.logger('sd-notify');
    onNotifyError((err, state) => notifyLog.warn({ err, state: state.split('\n')[0] }, 'sd_notify failed'));
  }

  /** The child logger of a component (one per name), whose level follows agent.log_level on reload. */
  private logger(component: string): Logger {
    let l = this.loggers.get(component);
    if (!l) this.loggers.set(component, (l = this.rootLog.child({ component })));
    return l;
  }

  async start(): Promise<void> {
    const c = this.config;
    this.log.info({ config: c }, 'starting');
    process.on('SIGTERM', () => void this.shutdown('SIGTERM', exitCode('OK')));
    process.on('SIGINT', () => void this.shutdown('SIGINT', exitCode('OK')));
    process.on('SIGHUP', () => this.reload());

    this.watchStorage();
    makeDir(c.agent.runtime_dir, 'runtime');
    this.ring = openStateRing(c.agent.state_dir, c.sampler.metrics, c.sampler.ring_capacity, this.logger('ring'));
    this.control = new ControlServer(controlSocketPath(c.agent.runtime_dir), this.logger('control'));
    this.control.handle('status', async () => this.status());
    this.control.handle('ping', async () => ({ pong: true, pid: process.pid }));
    // `predict --plot`: the ring's newest samples (the ring is this process's while it runs).
    this.control.handle('recent', async (req) => recentSamples(this.ring!, this.config.sampler.metrics, this.config.sampler.interval_ms, req.samples));
    this.answerTrainerCommandsAbsent();
    await this.control.listen();
    if (this.shuttingDown) return;

    const sampler = new Sampler({
      ring: this.ring,
      metrics: c.sampler.metrics,
      intervalMs: c.sampler.interval_ms,
      procRoot: c.sampler.proc_root,
      sysRoot: c.sampler.sys_root,
      logLevel: c.agent.log_level,
      logger: this.logger('sampler'),
      watchdogPingMs: watchdogPingMs(),
      replay: c.sampler.replay_file ? { file: c.sampler.replay_file, history: c.sampler.replay_history, hold: c.sampler.replay_hold } : null,
    });
    this.sampler = sampler;
    sampler.on('fatal', (err: Error) => void this.shutdown(`sampler failed: ${err.message}`, exitCode('SOFTWARE')));
    await sampler.firstSample();
    if (this.shuttingDown) return;

    this.registry = createMetricsRegistry(sampler, this.ring, storageHealth, this.logStats, c.sampler.metrics);
    await this.applyPrometheus(c);
    this.ready = true;
    notify.ready(this.statusLine());
    sampler.openWatchdog();
    this.log.info({ ring: join(c.agent.state_dir, RING_FILE), socket: this.control.path, metrics: c.sampler.metrics }, 'ready');
    this.startTimers();
    await this.applyTrainer(c);
  }

  /**
   * One log line when a path starts failing and one when it writes again (not one per retry);
   * a failing log itself is not logged about, its lines wait in the destination's buffer.
   */
  private watchStorage(): void {
    const log = this.logger('storage');
    const off = storageHealth.onChange((f, kind, path) => {
      if (kind === 'log') return;
      if (f && f.count === 1) log.error({ kind, path, errno: f.errno, reason: f.message }, 'state file write failed; the previous file is kept and the write is retried');
      else if (!f) log.info({ kind, path }, 'state file writes again');
    });
    void this.exited.then(off);
  }

  private startTimers(): void {
    const ping = watchdogPingMs();
    if (ping !== null) {
      // Sent by the sampler's worker thread, not from here: the training job's synchronous tfjs
      // stretches on this thread must not starve the pings, yet a hung sampler or a hung main
      // thread must stop them (agent/sampler/watchdog-gate.ts has the rules and the bound).
      this.log.info({ everyMs: ping, mainStallMs: mainStallMsForPing(ping), from: 'sampler thread' }, 'watchdog enabled');
    }
    this.timers.push(setInterval(() => notify.status(this.statusLine()), STATUS_EVERY_MS));
  }

  /** Sampling is healthy while the newest sample is at most two intervals (+1 s) old. */
  private healthy(): boolean {
    const last = this.sampler?.lastStoredAt;
    return last != null && performance.now() - last <= 2 * this.config.sampler.interval_ms + 1000;
  }

  private statusLine(): string {
    const s = this.sampler;
    const ring = this.ring;
    if (!s || !ring || ring.isClosed) return 'starting';
    return `sampling ${this.config.sampler.metrics.length} metrics every ${this.config.sampler.interval_ms} ms; ${s.storedCount} samples stored; ring ${ring.size}/${ring.capacity}`;
  }

  status(): Record<string, unknown> {
    const c = this.config;
    const s = this.sampler?.stats();
    const ring = this.ring;
    const on = new Set(c.sampler.metrics.map((m) => METRICS[m]?.collector));
    const allCollectors = [...new Set(Object.values(METRICS).map((m) => m.collector))];
    return {
      pid: process.pid,
      ready: this.ready,
      healthy: this.healthy(),
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      config_file: c.source,
      state_dir: c.agent.state_dir,
      last_reload: this.lastReload,
      ring: ring && { path: join(c.agent.state_dir, RING_FILE), size: ring.size, capacity: ring.capacity, fill: ring.size / ring.capacity, channels: c.sampler.metrics },
      sampling: s && {
        interval_ms: s.intervalMs,
        samples_stored: s.samplesStored,
        push_errors: s.pushErrors,
        skipped_slots: s.skippedSlots,
        last_sample_ms: s.lastSampleMs,
        last_sample_age_ms: s.lastSampleMs === null ? null : Date.now() - s.lastSampleMs,
        jitter_ms: s.jitterMs,
        store_lag_ms: s.storeLagMs,
        replay: s.replay,
      },
      collectors: allCollectors.map((name) => {
        const st = s?.collectors.find((x) => x.name === name);
        return { name, on: on.has(name), ok: st?.ok ?? null, last_duration_ms: st?.lastDurationMs ?? null, failures: st?.failures ?? 0, last_error: st?.lastError ?? null };
      }),
      // Failed writes of state files and the log, by path, until the next write of that path succeeds.
      storage: { ...storageHealth.report(), log_lines_dropped: this.logStats.dropped },
      prometheus: this.metricsServer ? { url: this.metricsServer.url } : this.prometheusError ? { url: null, error: this.prometheusError } : null,
      federation: this.trainer?.kind === 'federation'
        ? this.trainer.job.status()
        : c.federation.enabled
          ? { enabled: true, running: false, error: this.trainerStartError }
          : { enabled: false },
      trainer: this.trainer?.kind === 'training'
        ? this.trainer.job.status()
        : c.federation.enabled
          ? { enabled: false, running: false, reason: 'the federation job trains ([federation] enabled)' }
          : c.trainer.enabled
          ? this.trainerStartError
            ? { enabled: true, running: false, error: this.trainerStartError }
            : { enabled: true, running: false, starts_at_samples: this.samplesForFirstRound(c) }
          : { enabled: false, running: false },
    };
  }

  private async applyPrometheus(c: AgentConfig): Promise<void> {
    if (this.metricsServer) {
      await this.metricsServer.close();
      this.metricsServer = undefined;
    }
    this.prometheusError = null;
    if (!c.prometheus.enabled || !this.registry) return;
    try {
      this.metricsServer = await MetricsServer.start(this.registry, c.prometheus.host, c.prometheus.port, this.logger('prometheus'));
    } catch (err) {
      // A taken port must not stop sampling (nor put a systemd service into a restart loop), but
      // status says it failed and why: "off" would read as never configured.
      const e = err as NodeJS.ErrnoException;
      const fix = e.code === 'EACCES' ? 'choose a port above 1023 (prometheus.port) or grant CAP_NET_BIND_SERVICE' : 'choose another prometheus.port or stop what holds it';
      this.prometheusError = `cannot listen on ${c.prometheus.host}:${c.prometheus.port}: ${errnoWords(e)}; ${fix}`;
      this.log.error({ err, host: c.prometheus.host, port: c.prometheus.port, reason: this.prometheusError }, 'metrics endpoint failed to listen; sampling continues without it');
      return;
    }
    if (this.shuttingDown) await this.metricsServer.close();
  }

  private async stopTrainer(): Promise<void> {
    const slot = this.trainer;
    if (!slot) return;
    this.trainer = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), TRAINER_STOP_MS)));
    const outcome = await Promise.race([slot.job.stop().then(() => 'stopped' as const, (err: unknown) => err), timeout]);
    clearTimeout(timer);
    if (outcome !== 'stopped') this.log.warn({ outcome: outcome === 'timeout' ? `no stop within ${TRAINER_STOP_MS} ms` : String(outcome) }, 'training job did not stop cleanly');
    for (const h of slot.handlers) this.control?.unhandle(h);
    for (const m of slot.metrics) this.registry?.removeSingleMetric(m);
    this.answerTrainerCommandsAbsent();
  }

  /**
   * Until a training job registers its commands (it starts only once the ring holds enough
   * samples, and loading TensorFlow.js takes seconds more), they answer why there is none,
   * not UNKNOWN_COMMAND: `icosfl-agent predict` right after a start then says to retry.
   */
  private answerTrainerCommandsAbsent(): void {
    const control = this.control;
    if (!control) return;
    for (const name of TRAINER_COMMANDS) {
      if (control.has(name)) continue;
      control.handle(name, async () => {
        throw this.trainerAbsence();
      });
    }
  }

  private trainerAbsence(): IcosflError {
    const t = this.config.trainer;
    if (!t.enabled) return new IcosflError('TRAINER_NOT_RUNNING', 'training is disabled in this daemon\'s config (trainer.enabled = false)');
    if (this.trainerStartError) return new IcosflError('TRAINER_NOT_RUNNING', `the training job could not start: ${this.trainerStartError}`);
    if (this.trainerWait && this.ring) {
      return new IcosflError('RING_NOT_ENOUGH_DATA', `the training job starts once the ring holds ${this.samplesForFirstRound(this.config)} samples; it holds ${this.ring.size}`);
    }
    return new IcosflError('TRAINER_NOT_RUNNING', 'the training job is starting; retry in a few seconds');
  }

  /**
   * Samples the ring must hold before the first round can run: min_samples windows of
   * lookback + horizon. The job (and with it tfjs, which job.ts imports) is started only then,
   * so a fresh node does not load TensorFlow.js until there is something to train on.
   */
  private samplesForFirstRound(c: AgentConfig): number {
    return c.trainer.min_samples + c.trainer.lookback + c.trainer.horizon - 1;
  }

  private async applyTrainer(c: AgentConfig): Promise<void> {
    await this.stopTrainer();
    if (this.trainerWait) this.sampler?.off('stored', this.trainerWait);
    this.trainerWait = undefined;
    if (!this.ring || !this.sampler) return;
    // The federation job starts at once: it tells the coordinator it is there, waiting for data if need be.
    if (c.federation.enabled) return this.startJob(c, 'federation');
    if (!c.trainer.enabled) return;
    const needed = this.samplesForFirstRound(c);
    if (this.ring.size >= needed) return this.startJob(c, 'training');
    this.logger('trainer').info({ needed, have: this.ring.size }, 'training job waits for samples');
    const wait = () => {
      if (!this.ring || this.ring.size < needed) return;
      this.sampler?.off('stored', wait);
      this.trainerWait = undefined;
      void this.startJob(this.config, 'training');
    };
    this.trainerWait = wait;
    this.sampler.on('stored', wait);
  }

  private async startJob(c: AgentConfig, kind: JobSlot['kind']): Promise<void> {
    if (this.shuttingDown || !this.ring || !this.registry || !this.control) return;
    const log = this.logger(kind === 'training' ? 'trainer' : 'federation');
    const control = this.control;
    const handlers: string[] = [];
    const before = new Set(this.registry.getMetricsAsArray().map((m) => m.name));
    const controlRegistry = {
      handle: (name: string, fn: ControlHandler) => {
        // Replaces the absent-trainer answer (answerTrainerCommandsAbsent), nothing else.
        if ((TRAINER_COMMANDS as readonly string[]).includes(name)) control.unhandle(name);
        control.handle(name, fn);
        handlers.push(name);
      },
    };
    try {
      // Loaded here, not at the top: both jobs pull in tfjs, the federation job node-seal too.
      let job: JobSlot['job'];
      if (kind === 'training') {
        const mod = await import('../trainer/job.js');
        if (this.shuttingDown || this.ring.isClosed) return;
        job = mod.startTrainingJob({ ring: this.ring, channelNames: c.sampler.metrics, stateDir: c.agent.state_dir, config: c.trainer, logger: log, registry: this.registry, control: controlRegistry });
      } else {
        const mod = await import('../federation/job.js');
        if (this.shuttingDown || this.ring.isClosed) return;
        job = await mod.startFederationJob({
          ring: this.ring,
          channelNames: c.sampler.metrics,
          stateDir: c.agent.state_dir,
          settings: c.federation,
          privacy: c.privacy,
          trainer: c.trainer,
          logger: log,
          registry: this.registry,
          control: controlRegistry,
          onFirstModel: () => this.sampler?.releaseReplay(),
          configSource: c.source,
        });
        if (this.shuttingDown) {
          await job.stop();
          return;
        }
      }
      const metrics = this.registry.getMetricsAsArray().map((m) => m.name).filter((n) => !before.has(n));
      this.trainer = { kind, job, handlers, metrics };
      this.trainerStartError = null;
      log.info({ model: c.trainer.model, backend: c.trainer.backend }, `${kind} job started`);
    } catch (err) {
      // Sampling is the daemon's first job: a trainer that cannot start is reported, not fatal.
      for (const h of handlers) control.unhandle(h);
      this.answerTrainerCommandsAbsent();
      for (const m of this.registry.getMetricsAsArray().map((x) => x.name)) if (!before.has(m)) this.registry.removeSingleMetric(m);
      this.trainerStartError = (err as Error).message;
      log.error({ err }, `${kind} job could not start; sampling continues`);
    }
  }

  reload(): void {
    if (this.shuttingDown || !this.ready) return;
    notify.reloading();
    let next: AgentConfig;
    try {
      next = loadAgentConfig(this.loadOptions);
    } catch (err) {
      const e = err as Error & { details?: unknown };
      this.lastReload = { at: new Date().toISOString(), ok: false, message: e.message };
      this.log.error({ reason: e.message, problems: (e.details as { problems?: unknown } | undefined)?.problems }, 'config reload rejected; keeping the running config');
      notify.ready(`${this.statusLine()}; config reload rejected (see log)`);
      return;
    }
    const diff = diffConfig(this.config, next);
    const effects = diff.restart.length > 0 ? restartEffects(this.config, next, this.ring && !this.ring.isClosed ? this.ring.size : 0) : [];
    if (diff.restart.length > 0) this.log.warn({ keys: diff.restart, effects }, 'config keys changed that apply only after a restart');
    const prev = this.config;
    // Restart-only keys keep their running values until the restart.
    this.config = { ...next, agent: { ...next.agent, state_dir: prev.agent.state_dir, runtime_dir: prev.agent.runtime_dir }, sampler: { ...prev.sampler, interval_ms: next.sampler.interval_ms } };
    // pino children copy their level when made, so each one is set.
    for (const l of [this.rootLog, ...this.loggers.values()]) l.level = next.agent.log_level;
    if (next.sampler.interval_ms !== prev.sampler.interval_ms) this.sampler?.setIntervalMs(next.sampler.interval_ms);
    const live = async () => {
      if (diff.live.some((k) => k.startsWith('prometheus.'))) await this.applyPrometheus(this.config);
      if (diff.live.some((k) => k.startsWith('trainer.') || k.startsWith('federation.') || k.startsWith('privacy.'))) await this.applyTrainer(this.config);
    };
    void live().then(
      () => {
        this.lastReload = { at: new Date().toISOString(), ok: true, message: `applied: ${diff.live.join(', ') || 'nothing changed'}${diff.restart.length ? `; after restart: ${diff.restart.join(', ')}${effects.length ? ` (${effects.join('; ')})` : ''}` : ''}` };
        this.log.info({ applied: diff.live, needRestart: diff.restart }, 'config reloaded');
        notify.ready(this.statusLine());
      },
      (err: unknown) => {
        this.lastReload = { at: new Date().toISOString(), ok: false, message: (err as Error).message };
        this.log.error({ err }, 'config reload failed while applying');
        notify.ready(this.statusLine());
      },
    );
  }

  shutdown(why: string, code: number): Promise<number> {
    this.shuttingDown ??= (async () => {
      const started = performance.now();
      // Closed first: no WATCHDOG=1 from the sampler thread follows STOPPING=1.
      this.sampler?.closeWatchdog();
      notify.stopping(`stopping (${why})`);
      this.log.info({ why }, 'stopping');
      for (const t of this.timers) clearInterval(t);
      // Last resort: whatever hangs below, the process still ends inside systemd's patience.
      setTimeout(() => endBySignal(this.log, `shutdown overran its ${SHUTDOWN_BUDGET_MS} ms budget`), SHUTDOWN_BUDGET_MS).unref();
      const workerEnded = (await this.sampler?.stop()) ?? true;
      await this.stopTrainer();
      const stored = this.sampler?.storedCount ?? 0;
      this.ring?.close();
      await Promise.all([this.control?.close(), this.metricsServer?.close()]);
      this.log.info({ why, code, samplesStored: stored, tookMs: Math.round(performance.now() - started) }, 'stopped');
      if (!workerEnded) endBySignal(this.log, 'the sampler thread is blocked in a system call');
      this.resolveExit(code);
      return code;
    })();
    return this.shuttingDown;
  }
}

/**
 * Ends the process when a thread is stuck in a system call, which process.exit() would wait on
 * forever. The default action of SIGTERM ends every thread at once, and systemd counts an exit
 * by SIGTERM as clean. The ring is closed (flushed) before this is called, or its mapping still
 * holds every sample pushed (kill-safe by design).
 */
function endBySignal(log: Logger, why: string): void {
  log.error({ why }, 'ending the process by SIGTERM');
  process.removeAllListeners('SIGTERM');
  process.kill(process.pid, 'SIGTERM');
}

export async function runDaemon(load: LoadOptions): Promise<number> {
  const daemon = new Daemon(load);
  try {
    await daemon.start();
  } catch (err) {
    await daemon.shutdown(`start failed: ${(err as Error).message}`, exitCode('FAILURE'));
    throw err;
  }
  return daemon.exited;
}
