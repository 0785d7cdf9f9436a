import { hostname } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import { loadAgentBundle } from '../../common/crypto/index.js';
import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { ID_PATTERN, type Presence } from '../../common/protocol/messages.js';
import { DEFAULT_FEDERATION_MODEL, modelConfigHash, type FederationModel } from '../../common/protocol/federation-model.js';
import { dirname, join } from 'node:path';
import { loadOrCreateSigningKey, loadPublicKeyFile } from '../../common/crypto/signing-keys.js';
import { splitMessage } from '../../common/protocol/chunks.js';
import { COORDINATOR_SIGNER, publicKeyText, type Signer, type SignerKey } from '../../common/protocol/signature.js';
import { federationTopics } from '../../common/protocol/topics.js';
import { Messenger, encodeForWire } from '../../common/transport/messenger.js';
import { isInsecureRemote } from '../../common/config/broker-security.js';
import { connectMqtt } from '../../common/transport/mqtt.js';
import type { Transport } from '../../common/transport/transport.js';
import { agentBrokerCredentials } from '../config/broker-credentials.js';
import { selectBackend } from '../trainer/backends.js';
import type { TrainerConfig } from '../trainer/config.js';
import { clampCounter, clampedWithin, clampForecast, countClamped, type ClampedSteps } from '../trainer/forecast-domain.js';
import { buildWindows } from '../trainer/windows.js';
import { FederationClient } from './client.js';
import { plaintextCodec, type AgentCodec } from './codec.js';
import { AgentKeyFiles } from './key-files.js';
import { createEngines, specOf, type Engines } from './engines.js';
import { mixedForecast, type FederatedModel } from './federated-model.js';
import { ForecastScore } from './forecast-score.js';
import { loadFederatedModel, moveAside, saveFederatedModel } from './model-file.js';
import { Participant } from './participant.js';
import { fileAccountantStore, UpdatePrivacy, type PrivacySettings } from './privacy.js';
import { RingFederationData, type RingReader } from './ring-data.js';

/** Key bundles are re-read at least this often (and with every presence interval when shorter). */
const KEY_POLL_MAX_MS = 5_000;

/**
 * The daemon's federation job (started instead of the local-only training job when
 * [federation] enabled = true): connects to the broker, takes part in the coordinator's rounds
 * through the participant, and forecasts with the federated model of the newest finished
 * session (saved in the state directory, so a restart forecasts at once). Training runs on the
 * fused engines (a worker thread or the GPU), so the sampler and the control socket stay live.
 * The broker may be away at start: the job keeps trying, and says so in `status`.
 */
export interface FederationSettings {
  enabled: boolean;
  broker: string;
  federation_id: string;
  keys: string;
  /** The next key epoch's bundle; empty: agent-next.json beside keys. */
  next_keys?: string;
  agent_id: string;
  codec: 'ckks' | 'plaintext';
  presence_interval_s: number;
  reconnect_min_ms: number;
  reconnect_max_ms: number;
  /** Empty: no message signing (see agent/config/schema.ts). */
  coordinator_key?: string;
  signing_key?: string;
  ca: string;
  cert: string;
  key: string;
  username: string;
  password_file: string;
  allow_insecure: boolean;
}

export interface FederationJobDeps {
  ring: RingReader;
  channelNames: string[];
  stateDir: string;
  settings: FederationSettings;
  /** [privacy]; absent or disabled: updates go out as trained. */
  privacy?: PrivacySettings;
  trainer: TrainerConfig;
  logger: Logger;
  registry: Registry;
  control: { handle(name: string, fn: (req: Record<string, unknown>) => Promise<unknown>): void };
  /** Called once, when the first federated model is installed (the daemon releases a held replay). */
  onFirstModel?: () => void;
  software?: string;
  /** The config file the settings came from, for error messages (null: defaults and overrides). */
  configSource?: string | null;
}

export interface FederationJob {
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

/** The agent id: the configured one, else this host's name made safe for topics. */
export function agentIdOf(configured: string): string {
  const id = configured || hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  if (!ID_PATTERN.test(id)) throw new IcosflError('CONFIG_INVALID', `federation.agent_id '${id}' must be 1–64 of [A-Za-z0-9._-]`);
  return id;
}

/** federation.signing_key, else the agent's key in its state directory. */
export function signingKeyPath(settings: { signing_key?: string }, stateDir: string): string {
  return settings.signing_key || join(stateDir, 'agent-signing.key');
}

/**
 * With federation.coordinator_key set: this agent signs with its own key (created on first use;
 * `icosfl-agent identity` prints it for enrolment) and takes announcements and globals only when
 * signed by the pinned coordinator key.
 */
function agentSigning(settings: FederationJobDeps['settings'], stateDir: string, agent: string, log: Logger): { signer?: Signer; keyOf?: (s: string) => SignerKey; publicKey?: string } {
  const security = log.child({ component: 'security' });
  if (!settings.coordinator_key) {
    security.warn({ event: 'signing-off' }, 'federation.coordinator_key is not set: announcements and globals are taken unsigned, and this agent signs nothing');
    return {};
  }
  const pinned = loadPublicKeyFile(settings.coordinator_key);
  const path = signingKeyPath(settings, stateDir);
  const { key, created } = loadOrCreateSigningKey(path);
  const publicKey = publicKeyText(key);
  security.info({ event: created ? 'key-created' : 'key-loaded', signingKey: path, publicKey, coordinatorKey: publicKeyText(pinned) }, created ? 'signing key created; enrol it at the coordinator: icosfl-coordinator agents enroll ' + agent + ' ' + publicKey : 'message signing on');
  const keyOf = (s: string): SignerKey => (s === COORDINATOR_SIGNER ? { key: pinned } : { refused: 'unknown-signer', detail: `${s} is not the coordinator` });
  return { signer: { id: agent, key }, keyOf, publicKey };
}

export async function startFederationJob(deps: FederationJobDeps): Promise<FederationJob> {
  const { settings, logger: log } = deps;
  const agent = agentIdOf(settings.agent_id);
  // Read before anything else starts: a wrong TLS file is a config error naming key and file.
  const credentials = agentBrokerCredentials(settings, agent, deps.configSource);
  for (const warning of credentials.warnings) log.warn({ warning }, 'broker credentials readable by others');
  if (settings.allow_insecure && isInsecureRemote(settings.broker)) {
    log.warn({ broker: settings.broker }, 'federation.allow_insecure: the broker connection is unencrypted and unauthenticated; anyone on the path can read and forge federation messages');
  }
  let codec: AgentCodec;
  let federation: string;
  let keyFiles: AgentKeyFiles | undefined;
  if (settings.codec === 'ckks') {
    const bundle = loadAgentBundle(settings.keys);
    federation = settings.federation_id || bundle.params.federationId;
    if (federation !== bundle.params.federationId) {
      throw new IcosflError('CONFIG_INVALID', `federation.federation_id '${settings.federation_id}' is not the key bundle's federation '${bundle.params.federationId}' (${settings.keys})`);
    }
    keyFiles = await AgentKeyFiles.open({ path: settings.keys, bundle }, settings.next_keys || join(dirname(settings.keys), 'agent-next.json'), log);
    codec = keyFiles.forKey(bundle.params.keyId)!;
  } else {
    if (!settings.federation_id) throw new IcosflError('CONFIG_INVALID', 'federation.federation_id is required with federation.codec = "plaintext" (there is no key bundle to take it from)');
    federation = settings.federation_id;
    codec = plaintextCodec();
    log.warn({}, 'federation without encryption (codec plaintext): the coordinator sees this agent\'s weights');
  }
  const data = new RingFederationData(deps.ring, deps.channelNames);
  const { publicKey, ...signing } = agentSigning(settings, deps.stateDir, agent, log);

  // Engines per model configuration; the newest two are kept (the one forecasting and a new session's).
  const engines = new Map<string, Engines>();
  let backend: string | undefined;
  const enginesFor = (m: FederationModel): Engines => {
    const key = modelConfigHash(m);
    let e = engines.get(key);
    if (!e) {
      e = createEngines(m);
      engines.set(key, e);
      while (engines.size > 2) {
        const [oldKey, old] = engines.entries().next().value!;
        engines.delete(oldKey);
        old.dispose();
      }
    }
    return e;
  };

  let model: FederatedModel | undefined;
  try {
    model = loadFederatedModel(deps.stateDir);
    if (model) log.info({ session: model.session, round: model.round }, 'federated model loaded');
  } catch (err) {
    if (!isIcosflError(err, 'STATE_CORRUPT')) throw err;
    log.error({ err, movedTo: moveAside(deps.stateDir) }, 'saved federated model is corrupt; waiting for the next session');
  }
  const choice = await selectBackend(deps.trainer, specOf(model?.model ?? { ...DEFAULT_FEDERATION_MODEL, metrics: deps.channelNames.slice(0, 1) }), { logger: log });
  backend = choice.chosen;

  const forecastGauge = new Gauge({ name: 'icosfl_forecast', help: "Forecast of a metric steps_ahead samples from now, in the metric's unit (federated model)", labelNames: ['metric', 'steps_ahead'], registers: [deps.registry] });
  const roundGauge = new Gauge({ name: 'icosfl_federation_round', help: 'Round of the newest global model installed (0 = none yet)', registers: [deps.registry] });
  const clampedCounter = clampCounter(deps.registry);
  const connectedGauge = new Gauge({ name: 'icosfl_federation_connected', help: '1 while connected to the broker', registers: [deps.registry] });
  let score: ForecastScore | undefined = model ? new ForecastScore(model.model.metrics, model.model.horizon) : undefined;

  const privacy = deps.privacy?.enabled ? new UpdatePrivacy({ settings: deps.privacy, store: fileAccountantStore(deps.stateDir), logger: log }) : undefined;
  if (privacy) {
    const st = privacy.status();
    log.info({ epsilon: st.epsilon, delta: st.delta, epsilon_budget: st.epsilon_budget, epsilon_per_round: st.epsilon_per_round, rounds_charged: st.rounds_charged, state: st.state }, 'differential privacy on');
    const gauge = (name: string, help: string, value: () => number) => new Gauge({ name, help, registers: [deps.registry], collect() { this.set(value()); } });
    gauge('icosfl_privacy_epsilon', 'ε spent so far (cumulative over every round charged, at privacy.delta)', () => privacy.status().epsilon);
    gauge('icosfl_privacy_epsilon_per_round', 'ε of one round on its own at the current settings', () => privacy.epsilonPerRound);
    gauge('icosfl_privacy_delta', 'δ of the reported ε', () => deps.privacy!.delta);
    gauge('icosfl_privacy_epsilon_budget', 'ε at which the agent stops sending updates', () => deps.privacy!.epsilon_budget);
    gauge('icosfl_privacy_rounds_charged', 'Rounds composed into the privacy accountant (persisted across restarts)', () => privacy.status().rounds_charged);
    gauge('icosfl_privacy_contributing', '1 while the agent sends updates; 0 once the budget is spent or the accountant state is unusable', () => (privacy.status().state === 'contributing' ? 1 : 0));
  }
  const participant = new Participant({ agent, seedOffset: agentSeedOffset(agent), engines: enginesFor, codec, ...(keyFiles ? { keyring: keyFiles } : {}), data, logger: log, ...(privacy ? { privacy } : {}) });
  participant.result = model;
  let released = false;
  const installed = (fm: FederatedModel) => {
    model = fm;
    if (!score || score.metrics.join() !== fm.model.metrics.join() || score.horizon !== fm.model.horizon) score = new ForecastScore(fm.model.metrics, fm.model.horizon);
    try {
      saveFederatedModel(deps.stateDir, fm);
    } catch (err) {
      log.error({ err }, 'federated model could not be saved; it is used until the daemon stops');
    }
    refreshForecast();
    if (!released) {
      released = true;
      deps.onFirstModel?.();
    }
  };

  /** The federated forecast of the next horizon samples, from the newest windows. */
  const forecastNext = async (): Promise<{ origin: number; values: Float32Array; clamped: ClampedSteps; last: Float32Array; fm: FederatedModel } | { reason: string }> => {
    const fm = model;
    if (!fm) return { reason: `no federated model yet: the first session${participant.session ? ` (${participant.session})` : ''} has not finished` };
    const m = fm.model;
    // Windows whose targets are known, for the mixture's shares, then the current one.
    const known = Math.ceil(6 * (m.mixMemory > 0 ? m.mixMemory : 33));
    const got = data.recent(m, known + m.lookback + m.horizon - 1);
    if ('missing' in got) return { reason: `the model's metric '${got.missing}' is not sampled here` };
    const C = m.metrics.length;
    const T = got.timestamps.length;
    if (T < m.lookback + m.horizon) return { reason: `the ring holds ${T} samples; a forecast needs ${m.lookback + m.horizon}` };
    const history = buildWindows(got.values, C, m.lookback, m.horizon);
    const current = got.values.subarray((T - m.lookback) * C);
    if (!current.every(Number.isFinite) || history.n < 1) return { reason: `the newest ${m.lookback} samples are not all present yet` };
    const x = new Float32Array(history.x.length + current.length);
    x.set(history.x);
    x.set(current, history.x.length);
    const y = new Float32Array(history.y.length + m.horizon * C);
    y.set(history.y);
    const ws = { x, y, n: history.n + 1, lookback: m.lookback, horizon: m.horizon, channels: C, skipped: 0 };
    const e = enginesFor(m);
    const values = await e.exclusive(() => mixedForecast(e, fm, ws, [history.n], history.n));
    // What users see (gauges, predict) and what is scored: inside each metric's domain.
    const clamped = clampForecast(values, m.metrics);
    return { origin: got.timestamps[T - 1]!, values, clamped, last: got.values.slice((T - 1) * C, T * C), fm };
  };

  let forecasting = false;
  const refreshForecast = () => {
    if (forecasting) return;
    forecasting = true;
    void forecastNext()
      .then((f) => {
        if ('reason' in f) return;
        const { metrics, horizon } = f.fm.model;
        countClamped(clampedCounter, clampedWithin(f.clamped, horizon));
        metrics.forEach((metric, c) => {
          for (let h = 0; h < horizon; h++) forecastGauge.set({ metric, steps_ahead: String(h + 1) }, f.values[h * metrics.length + c]!);
        });
        if (score) {
          score.record(f.origin, f.values, f.last);
          const recent = data.recent(f.fm.model, 4 * horizon + 64);
          if (!('missing' in recent)) score.settle(recent.timestamps, recent.values);
        }
      })
      .catch((err) => log.warn({ err }, 'forecast not refreshed'))
      .finally(() => (forecasting = false));
  };
  const forecastTimer = setInterval(refreshForecast, deps.trainer.forecast_interval_s * 1000);
  forecastTimer.unref();
  // Key rotation: the bundles are re-read as often as presence is sent; a change is announced at once.
  let polling = false;
  const keyTimer = setInterval(() => {
    if (!keyFiles || polling) return;
    polling = true;
    void keyFiles
      .poll()
      .then((changed) => (changed ? client?.keysChanged() : undefined))
      .catch((err) => log.warn({ err }, 'key bundles not re-read'))
      .finally(() => (polling = false));
  }, Math.min(KEY_POLL_MAX_MS, settings.presence_interval_s * 1000));
  keyTimer.unref();

  deps.control.handle('predict', async (req) => {
    const fm = model;
    const H = fm?.model.horizon ?? DEFAULT_FEDERATION_MODEL.horizon;
    const h = req.horizon === undefined ? H : Number(req.horizon);
    if (!Number.isInteger(h) || h < 1 || h > H) throw new RangeError(`horizon must be an integer from 1 to ${H}, got ${String(req.horizon)}`);
    const f = await forecastNext();
    if ('reason' in f) throw new IcosflError('RING_NOT_ENOUGH_DATA', f.reason);
    const forecast: Record<string, number[]> = {};
    const metrics = f.fm.model.metrics;
    metrics.forEach((name, c) => (forecast[name] = Array.from({ length: h }, (_, s) => f.values[s * metrics.length + c]!)));
    // The clamps within the h steps answered, counted as the gauges' are.
    const clamped = clampedWithin(f.clamped, h);
    countClamped(clampedCounter, clamped);
    return { version: f.fm.session, round: f.fm.round, savedAt: f.fm.createdAt, backend, horizon: h, source: 'federated', forecast, clamped };
  });

  // The broker may be down or not yet up: keep trying in the background, sampling goes on.
  let transport: Transport | undefined;
  let messenger: Messenger | undefined;
  let client: FederationClient | undefined;
  let stopped = false;
  let connectError: string | null = null;
  const topics = federationTopics(federation);
  const will = (): Presence => ({ type: 'presence', federation, agent, state: 'offline', reason: 'connection lost', at: Date.now(), ...(deps.software ? { software: deps.software } : {}) });
  const connectLoop = async () => {
    let delay = settings.reconnect_min_ms;
    while (!stopped && !transport) {
      try {
        const t = await connectMqtt(settings.broker, {
          clientId: agent,
          logger: log,
          reconnect: { minMs: settings.reconnect_min_ms, maxMs: settings.reconnect_max_ms },
          ...(credentials.tls === undefined ? {} : { tls: credentials.tls }),
          ...(credentials.username === undefined ? {} : { username: credentials.username }),
          ...(credentials.password === undefined ? {} : { password: credentials.password }),
          will: { topic: topics.presence(agent), payload: splitMessage(encodeForWire(will(), signing.signer, Date.now()))[0]!, qos: 1 },
        });
        if (stopped) {
          await t.close();
          return;
        }
        transport = t;
        connectError = null;
        t.on('connect', () => connectedGauge.set(1));
        t.on('disconnect', () => connectedGauge.set(0));
        connectedGauge.set(1);
        messenger = new Messenger({ transport: t, federation, accept: new Set(['announce', 'global']), logger: log, securityLogger: log.child({ component: 'security' }), ...signing });
        client = new FederationClient({
          agent,
          federation,
          transport: t,
          messenger,
          participant,
          logger: log,
          presenceEveryMs: settings.presence_interval_s * 1000,
          software: deps.software ?? 'icosfl',
          onModel: (fm) => {
            roundGauge.set(fm.round);
            installed(fm);
          },
        });
        await client.start();
        log.info({ broker: t.status().endpoint, federation, agent }, 'federation joined');
      } catch (err) {
        connectError = (err as Error).message;
        // A refused certificate or password is logged as an error: retrying will not fix it, an operator must.
        const code = isIcosflError(err) ? err.code : undefined;
        if (code === 'TRANSPORT_NOT_AUTHORISED' || code === 'TRANSPORT_TLS_UNTRUSTED') log.error({ err: connectError, code, retryInMs: delay }, 'broker refused this agent or is not trusted; retrying');
        else log.warn({ err: connectError, retryInMs: delay }, 'broker not reachable; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(settings.reconnect_max_ms, delay * 2);
      }
    }
  };
  void connectLoop();

  return {
    async stop() {
      stopped = true;
      clearInterval(forecastTimer);
      clearInterval(keyTimer);
      await client?.stop();
      messenger?.close();
      await transport?.close();
      for (const e of engines.values()) e.dispose();
      engines.clear();
      if (keyFiles) keyFiles.dispose();
      else codec.dispose();
    },
    status() {
      return {
        enabled: true,
        agent,
        federation,
        broker: transport?.status().endpoint ?? settings.broker,
        connected: transport?.status().connected ?? false,
        connect_error: connectError,
        signing: publicKey ? { on: true, public_key: publicKey } : { on: false },
        backend: backend ?? null,
        session: participant.session ?? null,
        client: client?.status() ?? null,
        model: model ? { session: model.session, round: model.round, best_round: model.bestRound, created_at: model.createdAt, ridge: model.ridge !== undefined, metrics: model.model.metrics } : null,
        forecast_score: score?.summary() ?? null,
        privacy: privacy?.status() ?? { enabled: false },
        keys: keyFiles ? keyFiles.held() : [],
        key_epoch: participant.keyEpoch ?? null,
      };
    },
  };
}

/** A stable per-agent offset for the seeds of its training calls (simulate uses 1000 × index). */
export function agentSeedOffset(agent: string): number {
  let h = 2166136261;
  for (let i = 0; i < agent.length; i++) h = Math.imul(h ^ agent.charCodeAt(i), 16777619) >>> 0;
  return 1000 * (h % 100_000);
}
