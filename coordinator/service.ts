import { createPublicKey } from 'node:crypto';
import { loadSigningKey } from '../common/crypto/signing-keys.js';
import { COORDINATOR_SIGNER, publicKeyText, type Signer, type SignerKey } from '../common/protocol/signature.js';
import { EnrolmentRegistry } from './enrolment.js';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ControlServer } from '../common/control/server.js';
import { createCoordinatorMetrics } from './http/metrics.js';
import { HttpServer, metricsRoute, type Route } from '../common/http-server.js';
import { statusPageRoutes } from './http/status-page.js';
import { IcosflError } from '../common/errors.js';
import { errnoWords, outputError } from '../common/system-errors.js';
import { exitCode } from '../common/exit-codes.js';
import { createLogger, resolveLogOutput, setRootLogger, warnOnBadLogFormat, type Logger } from '../common/log.js';
import { stdoutLogDestination } from '../common/log-destination.js';
import { storageHealth } from '../common/storage-health.js';
import { Messenger } from '../common/transport/messenger.js';
import { loadFederationKeys, resolveFederation, type FederationIdentity } from './config/federation.js';
import { loadCoordinatorConfig, type LoadOptions } from './config/load.js';
import type { CoordinatorConfig } from './config/schema.js';
import { controlListeners, controlSocketPath } from './control-socket.js';
import { RoundRunner } from './round/runner.js';
import { keysOf, makeSettings, type RoundSettings, type RoundSummary } from './round/state.js';
import { CoordinatorKeyRing } from './key-ring.js';
import type { CoordinatorBundle } from '../common/crypto/bundle.js';
import { ckksStrategy, plaintextStrategy } from './strategy/aggregation.js';
import { openBroker, type BrokerLink } from './service-broker.js';
import { PreloadedJournal } from './service-journal.js';
import { ServiceNotifier } from './service-notify.js';
import { agentsAnswer, pauseView, roundsAnswer, statusAnswer, statusLine, type ServiceFacts } from './service-status.js';

/**
 * `icosfl-coordinator serve`: the coordinator service around the round runner. Start-up order:
 * config (a bad one exits 78 before anything is touched) → key bundle (77 for a secret key) →
 * state directory locked and loaded (75 while another coordinator holds it) → control socket →
 * broker, embedded or external (69 when the first connection fails within 10 s) → messenger and
 * runner → subscriptions → READY=1. SIGTERM/SIGINT stop it in reverse within 5 s; SIGHUP only
 * logs that a restart applies config changes. With federation.sessions > 0 it exits 0 once the
 * runner has run them all.
 */
const STATUS_EVERY_MS = 10_000;
/** SIGTERM must end the process within 5 s (systemd's TimeoutStopSec is longer; the tests hold us to 5). */
const SHUTDOWN_BUDGET_MS = 4_500;
/** After the last session: time for agents to fetch the final global and acknowledge it. */
const DRAIN_MS = 1_000;
/** How often coordinator.next_keys is looked at (one stat). */
const KEY_POLL_MS = 1_000;
/** Closing the transport waits for in-flight publishes at most this long, then drops them. */
const TRANSPORT_CLOSE_MS = 1_500;

export class CoordinatorService {
  readonly config: CoordinatorConfig;
  readonly #root: Logger;
  readonly #loggers = new Map<string, Logger>();
  readonly #log: Logger;
  readonly #notify: ServiceNotifier;
  readonly #startedAt = Date.now();
  readonly #timers: NodeJS.Timeout[] = [];
  #federation: FederationIdentity | undefined;
  #settings: RoundSettings | undefined;
  #journal: PreloadedJournal | undefined;
  #control: ControlServer | undefined;
  #broker: BrokerLink | undefined;
  #messenger: Messenger | undefined;
  #runner: RoundRunner | undefined;
  #http: HttpServer | undefined;
  #httpError: string | null = null;
  /** The [http] routes; each part of the service adds its own before the server starts. */
  readonly #routes = new Map<string, Route>();
  #ready = false;
  #stopping: Promise<number> | undefined;
  #resolveExit!: (code: number) => void;
  readonly exited = new Promise<number>((resolve) => (this.#resolveExit = resolve));

  constructor(load: LoadOptions) {
    this.config = loadCoordinatorConfig(load);
    // On stdout, which journald stores; JSON there, readable lines on a terminal (common/log.ts);
    // a full disk under a stdout file is recorded, not fatal (common/log-destination.ts).
    this.#root = createLogger({ level: this.config.coordinator.log_level, output: resolveLogOutput(this.config.coordinator.log_format, 1), destination: stdoutLogDestination().stream });
    setRootLogger(this.#root);
    warnOnBadLogFormat(this.#root);
    this.#log = this.logger('coordinator');
    this.#notify = new ServiceNotifier(this.logger('sd-notify'));
  }

  /**
   * Message signing: with a signing key, sign what the coordinator sends and take only what
   * enrolled agents signed (the enrolment file is re-read when it changes).
   */
  #signing(): { signer?: Signer; keyOf?: (signer: string) => SignerKey } {
    const c = this.config.coordinator;
    const security = this.logger('security');
    if (c.signing_key === '') {
      security.warn({ event: 'signing-off' }, 'coordinator.signing_key is not set: messages are not signed, and anyone who may publish on the broker can speak as any agent (run `icosfl-coordinator keys init` and enrol the agents)');
      return {};
    }
    const key = loadSigningKey(c.signing_key);
    const registry = new EnrolmentRegistry(
      c.enrolled_agents,
      (err) => security.error({ event: 'enrolment-unreadable', err: err.message, file: c.enrolled_agents }, 'the enrolment file became unreadable; the last good list stays in force'),
      (change) => security.info({ event: 'enrolment-changed', ...change, file: c.enrolled_agents }, 'enrolled agents changed'),
    );
    security.info({ event: 'key-loaded', signingKey: c.signing_key, publicKey: publicKeyText(key), enrolled: registry.size, file: c.enrolled_agents }, 'message signing on: taking only messages signed by enrolled agents');
    // Aggregator workers sign their partial sums with this same key (docs/decisions.md D18).
    const own = createPublicKey(key);
    return { signer: { id: COORDINATOR_SIGNER, key }, keyOf: (id) => (id === COORDINATOR_SIGNER ? { key: own } : registry.keyOf(id)) };
  }

  /** The child logger of a component, one per name. */
  logger(component: string): Logger {
    let l = this.#loggers.get(component);
    if (!l) this.#loggers.set(component, (l = this.#root.child({ component })));
    return l;
  }

  async start(): Promise<void> {
    const c = this.config;
    const { origins: _origins, federationModel: _model, ...shown } = c;
    void _origins;
    void _model;
    this.#log.info({ config: shown }, 'starting');
    process.on('SIGTERM', () => void this.shutdown('SIGTERM', exitCode('OK')));
    process.on('SIGINT', () => void this.shutdown('SIGINT', exitCode('OK')));
    process.on('SIGHUP', () => this.#log.warn({ configFile: c.source }, 'SIGHUP: the coordinator applies config changes only at a restart (systemctl restart icosfl-coordinator)'));
    if (c.coordinator.codec === 'plaintext') {
      this.#log.warn({ codec: 'plaintext' }, 'codec is plaintext: agents send their weights in the clear and this coordinator sees them; meant for benchmarks only');
    }

    const bundle = await loadFederationKeys(c);
    const federation = resolveFederation(c, bundle);
    const signing = this.#signing();
    this.#federation = federation;
    const settings = makeSettings({
      federation: federation.id,
      codec: c.coordinator.codec,
      keyId: federation.keyId,
      ...(bundle ? { keyEpoch: bundle.params.epoch } : {}),
      model: c.federationModel,
      minAgents: c.federation.min_agents,
      maxRoundSamples: federation.maxRoundSamples,
      roundTimeoutMs: seconds(c.federation.round_timeout_s),
      ackTimeoutMs: seconds(c.federation.ack_timeout_s),
      roundIntervalMs: seconds(c.federation.round_interval_s),
      sessionIntervalMs: seconds(c.federation.session_interval_s),
      sessions: c.federation.sessions,
      presenceTimeoutMs: seconds(c.federation.presence_timeout_s),
      resumeGraceMs: seconds(c.federation.resume_grace_s),
      shards: c.federation.shards,
    });
    this.#settings = settings;

    this.#journal = new PreloadedJournal(c.coordinator.state_dir, this.logger('journal'));
    this.#journal.checkFederation(federation.id, c.coordinator.state_dir);

    makeRuntimeDir(c.coordinator.runtime_dir);
    // The viewer socket answers what reads the state; the operator socket also pause and resume (control-socket.ts).
    const control = new ControlServer(controlSocketPath(c.coordinator.runtime_dir), this.logger('control'), 'icosfl-coordinator', controlListeners(c.coordinator.runtime_dir));
    control.handle('status', async () => this.status());
    control.handle('agents', async () => agentsAnswer(this.#state(), settings, Date.now()));
    control.handle('rounds', async (req) => roundsAnswer(this.#state(), req.limit));
    control.handle('ping', async () => ({ pong: true, pid: process.pid }));
    control.handle('pause', async () => this.#pauseOrResume('pause'), 'operator');
    control.handle('resume', async () => this.#pauseOrResume('resume'), 'operator');
    this.#control = control;
    await control.listen();
    if (this.#stopping) return;

    const link = await openBroker(c, (name) => this.logger(name), federation.id);
    if (this.#stopping) {
      // Stopped while connecting: the shutdown did not see this link, so it is closed here.
      await closeTransport(link);
      await link.embedded?.close();
      return;
    }
    this.#broker = link;
    const { transport } = this.#broker;
    const messenger = new Messenger({
      transport,
      federation: federation.id,
      accept: new Set(['update', 'ack', 'presence', ...(settings.shards > 1 ? (['partial'] as const) : [])]),
      logger: this.logger('messenger'),
      chunkBytes: c.broker.chunk_bytes,
      ...signing,
      securityLogger: this.logger('security'),
      agentBudget: { maxBytes: c.federation.agent_bytes_per_round, maxMessages: c.federation.agent_messages_per_round },
    });
    this.#messenger = messenger;
    const keyRing = bundle ? new CoordinatorKeyRing(bundle, c.coordinator.next_keys, this.logger('keys')) : undefined;
    keyRing?.poll();
    const runner = new RoundRunner({
      settings,
      messenger,
      journal: this.#journal,
      strategy: bundle ? ckksStrategy(bundle) : plaintextStrategy(),
      ...(keyRing ? { strategyFor: (keyId: string) => keyRing.strategyFor(keyId) } : {}),
      logger: this.logger('rounds'),
    });
    this.#runner = runner;
    runner.on('round', (s: RoundSummary) => {
      this.logger('rounds').debug({ round: s.round, outcome: s.outcome }, 'round summary recorded');
      this.#notify.status(this.#statusLine());
    });
    if (c.http.enabled) {
      // Before runner.start(), so a round that the start closes or moves on is counted.
      const metrics = createCoordinatorMetrics({
        runner,
        settings,
        federation: { id: federation.id, keyId: federation.keyId },
        messenger: () => messenger.stats(),
        broker: () => ({ transport: transport.status(), embedded: link.embedded?.stats() ?? null }),
        storage: storageHealth,
      });
      this.#routes.set('/metrics', metricsRoute(metrics));
    }
    void runner.finished.then(() => {
      if (this.#stopping) return;
      this.#log.info({ sessions: settings.sessions, drainMs: DRAIN_MS }, 'every configured session ran; stopping after a short drain');
      const t = setTimeout(() => void this.shutdown('every configured session ran', exitCode('OK')), DRAIN_MS);
      this.#timers.push(t);
    });
    // In the same turn as the Messenger: the transport hands it queued messages (an external
    // broker's persistent session delivers them right after CONNACK) only from the next turn,
    // and runner.start() sets the messenger's handler before its first await, so none is dropped.
    await runner.start();
    if (this.#stopping) return;
    if (keyRing) {
      const active = keysOf(runner.state, settings).active;
      // The next epoch's bundle: offered now if it is already installed, then whenever the file changes.
      const offer = (b: CoordinatorBundle | undefined) => b && b.params.keyId !== active.keyId && void runner.dispatch({ type: 'keys-offered', now: Date.now(), epoch: b.params.epoch, keyId: b.params.keyId });
      for (const e of keyRing.epochs()) if (e.epoch > active.epoch) void runner.dispatch({ type: 'keys-offered', now: Date.now(), ...e });
      this.#timers.push(setInterval(() => offer(keyRing.poll()), KEY_POLL_MS));
    }
    for (const filter of [messenger.topics.updateFilter, messenger.topics.ackFilter, messenger.topics.presenceFilter, ...(settings.shards > 1 ? [messenger.topics.partialFilter] : [])]) await transport.subscribe(filter);
    if (this.#stopping) return;
    // Every reconnection (after the subscriptions are back): a broker that restarted without
    // persistence lost the retained announcement and global, and what agents sent meanwhile.
    transport.on('connect', () => void runner.reconnected().catch((err) => this.#log.warn({ err }, 'republishing after a reconnection failed')));

    if (c.http.enabled) {
      // The status page (/, /status.json and its files) answers from the same state as the control socket.
      const page = statusPageRoutes({ status: () => this.status(), rounds: (limit) => roundsAnswer(this.#state(), limit), agents: () => agentsAnswer(this.#state(), settings, Date.now()) });
      for (const [path, route] of page) this.#routes.set(path, route);
      try {
        this.#http = await HttpServer.start(this.#routes, c.http.host, c.http.port, this.logger('http'));
        this.logger('http').info({ url: this.#http.base, paths: [...this.#routes.keys()] }, 'http endpoint listening');
      } catch (err) {
        // Rounds go on without it (as the agent's [prometheus]); status says it failed and why.
        const e = err as NodeJS.ErrnoException;
        const fix = e.code === 'EACCES' ? 'choose a port above 1023 (http.port) or grant CAP_NET_BIND_SERVICE' : 'choose another http.port or stop what holds it';
        this.#httpError = `cannot listen on ${c.http.host}:${c.http.port}: ${errnoWords(e)}; ${fix}`;
        this.logger('http').error({ err, host: c.http.host, port: c.http.port, reason: this.#httpError }, 'http endpoint failed to listen; the rounds go on without metrics and status page');
      }
      if (this.#stopping) return;
    }

    this.#ready = true;
    this.#notify.ready(this.#statusLine());
    this.#log.info(
      { federation: federation.id, codec: settings.codec, broker: this.#broker.url, http: this.#http?.base ?? null, embedded: this.#broker.embedded !== null, port: this.#broker.embedded?.port ?? null, socket: control.path, stateDir: c.coordinator.state_dir, minAgents: settings.minAgents },
      'coordinator ready',
    );
    this.#startTimers();
    if (runner.state.done) {
      this.#log.warn({ stateDir: c.coordinator.state_dir, sessionsDone: runner.state.sessionsDone }, 'this state directory\'s federation already ran its configured sessions; nothing more runs (raise federation.sessions, or use another state_dir to start over)');
      void this.shutdown('the sessions had already run', exitCode('OK'));
    }
  }

  #startTimers(): void {
    this.#timers.push(setInterval(() => this.#notify.status(this.#statusLine()), STATUS_EVERY_MS));
    const every = this.#notify.watchdogEveryMs();
    if (every !== null) {
      // From the main thread's timers: a blocked event loop (a stuck sum, a busy loop) stops the pings.
      this.#log.info({ everyMs: every }, 'watchdog enabled');
      this.#notify.watchdog();
      this.#timers.push(setInterval(() => this.#notify.watchdog(), every));
    }
  }

  async #pauseOrResume(what: 'pause' | 'resume'): Promise<unknown> {
    const runner = this.#runner;
    if (!runner) throw new IcosflError('DAEMON_NOT_RUNNING', 'the coordinator is still starting (connecting to the broker); retry in a few seconds');
    const was = runner.state.paused ? 'paused' : 'running';
    const state = what === 'pause' ? await runner.pause() : await runner.resume();
    this.#notify.status(this.#statusLine());
    return { paused: pauseView(state), changed: was !== (state.paused ? 'paused' : 'running') };
  }

  #state() {
    const r = this.#runner;
    if (!r) throw new IcosflError('DAEMON_NOT_RUNNING', 'the coordinator is still starting (connecting to the broker); retry in a few seconds');
    return r.state;
  }

  #statusLine(): string {
    const r = this.#runner;
    return r && this.#settings ? statusLine(r.state, this.#settings, Date.now()) : 'starting';
  }

  status(): Record<string, unknown> {
    const state = this.#state();
    const b = this.#broker;
    const facts: ServiceFacts = {
      pid: process.pid,
      startedAt: this.#startedAt,
      ready: this.#ready,
      configFile: this.config.source,
      stateDir: this.config.coordinator.state_dir,
      socket: this.#control?.path ?? controlSocketPath(this.config.coordinator.runtime_dir),
      federation: this.#federation?.id ?? '',
      keyId: this.#federation?.keyId ?? '',
      broker: b ? { url: b.url, embedded: b.embedded !== null, port: b.embedded?.port ?? null, transport: b.transport.status(), embeddedStats: b.embedded?.stats() ?? null } : null,
      messenger: this.#messenger?.stats() ?? null,
      http: this.#http?.base ?? null,
      httpError: this.#httpError,
    };
    // storage: failed journal, snapshot, aggregate or log writes (common/storage-health.ts).
    return { ...statusAnswer(state, this.#settings!, facts, Date.now()), storage: storageHealth.report() };
  }

  shutdown(why: string, code: number): Promise<number> {
    this.#stopping ??= (async () => {
      const started = performance.now();
      this.#notify.stopping(`stopping (${why})`);
      this.#log.info({ why }, 'stopping');
      for (const t of this.#timers) clearTimeout(t);
      // Last resort: whatever hangs below, the process still ends within the 5 s SIGTERM promise.
      setTimeout(() => {
        this.#log.error({ why, budgetMs: SHUTDOWN_BUDGET_MS }, 'shutdown overran its budget; exiting now');
        process.exit(code);
      }, SHUTDOWN_BUDGET_MS).unref();
      await this.#step('runner', () => this.#runner?.stop());
      this.#messenger?.close();
      await this.#step('transport', () => closeTransport(this.#broker));
      await this.#step('broker', () => this.#broker?.embedded?.close());
      await this.#step('http', () => this.#http?.close());
      await this.#step('journal', () => this.#journal?.close());
      await this.#step('control socket', () => this.#control?.close());
      this.#log.info({ why, code, tookMs: Math.round(performance.now() - started) }, 'stopped');
      this.#resolveExit(code);
      return code;
    })();
    return this.#stopping;
  }

  /** One shutdown step; a failure is logged and the next step still runs. */
  async #step(what: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#log.warn({ err, step: what }, 'shutdown step failed');
    }
  }
}

function seconds(s: number): number {
  return Math.round(s * 1000);
}

/**
 * The control sockets' directory: 0711, searchable but not listable, so each socket's own mode
 * and group (0660, one group per role) decide who connects, not the directory's single group.
 */
function makeRuntimeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o711 });
  } catch (cause) {
    throw outputError(dir, cause, 'coordinator.runtime_dir', 'run as the service user or set coordinator.runtime_dir to a writable directory');
  }
}

/** A connected transport gets the in-flight publishes' acknowledgements (bounded); a lost one is dropped at once. */
async function closeTransport(link: BrokerLink | undefined): Promise<void> {
  if (!link) return;
  const t = link.transport;
  if (!t.status().connected) return t.close({ force: true });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), TRANSPORT_CLOSE_MS)));
  // Late: move on; closing the embedded broker next ends the connection, and the budget bounds the rest.
  await Promise.race([t.close(), late]);
  clearTimeout(timer);
}

export async function runService(load: LoadOptions): Promise<number> {
  const service = new CoordinatorService(load);
  try {
    await service.start();
  } catch (err) {
    await service.shutdown(`start failed: ${(err as Error).message}`, exitCode('FAILURE'));
    throw err;
  }
  return service.exited;
}
