// One federation session (ridge round, 3 FedAvg rounds, final round) with 3 agents on real GCD
// traces, run against every transport: (a) in one process over the in-memory bus
// (runInProcessFederation), (b) a coordinator process with its embedded broker and 3 agent
// daemons, (c) the same through a real Mosquitto. The same suite body checks each: a third party
// on the update and global topics, holding the agent key bundle like any agent, decrypts every
// update and every global: each global equals the plaintext weighted FedAvg of the updates seen
// for its round; the final round hands over the best round's aggregate; every agent installed the
// federated model and forecasts with it; the rounds are listed completed and in order.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, generateFederation } from '../../../common/crypto/index.js';
import { modelParamCount, parseFederationModel, ridgePayloadLength, type FederationModel } from '../../../common/protocol/federation-model.js';
import { MemoryBus } from '../../../common/transport/memory.js';
import { connectMqtt } from '../../../common/transport/mqtt.js';
import { mixedForecast, type FederatedModel } from '../../../agent/federation/federated-model.js';
import type { ParticipantData } from '../../../agent/federation/participant.js';
import { buildWindows, chronologicalSplit, concatWindows, sliceWindows, type WindowSet } from '../../../agent/trainer/windows.js';
import type { RoundSummary } from '../../../coordinator/round/state.js';
import { markGaps, readClientCsv } from '../../../simulate/csv.js';
import { runInProcessFederation, type InProcessFederationResult } from '../../../simulate/federation.js';
import { FederationCluster, METRICS, TRACES } from '../../helpers/federation-cluster.js';
import { checkFedAvg, FederationObserver } from '../../helpers/federation-observer.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { exitAfter, within } from '../../helpers/wait.js';

exitAfter(175_000, 'federation/rounds.test');

const AGENTS = 3;
const ROUNDS = 3;
/** |decrypted global − plaintext FedAvg| allowed: CKKS noise plus float32 rounding of the results. */
const TOLERANCE = 1e-4;
/** The model every setup runs: the coordinator's `[model]` defaults with these two keys set. */
const MODEL: FederationModel = parseFederationModel({ metrics: METRICS, rounds: ROUNDS });
/** Share of each agent's trace it trains on: unequal, so the weighted FedAvg is not the plain mean. */
const HISTORY = [0.8, 0.7, 0.6];
const logger = pino({ level: 'silent' });

interface Forecast {
  round: number;
  forecast: Record<string, number[]>;
}

/** What the suite body needs of a setup; each kind of setup provides it its own way. */
interface Setup {
  readonly agents: string[];
  /** Starts everything and returns once the session's final round completed. */
  run(): Promise<void>;
  observer(): FederationObserver;
  cipher(): AgentCipher;
  /** The coordinator's finished rounds (processes: `icosfl-coordinator rounds --json`). */
  rounds(): Promise<RoundSummary[]>;
  /** The federated model an agent reports (processes: `icosfl-agent status --json`, federation.model). */
  model(agent: string): Promise<{ round: number; metrics: string[] } | null>;
  /** processes: `icosfl-agent predict --json`. */
  predict(agent: string): Promise<Forecast>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// (a) in-memory: the whole federation in this process, the observer on the same MemoryBus.

interface Client {
  data: ParticipantData;
  validation: WindowSet;
  test: WindowSet;
}

/** Each trace split as simulate/experiment.ts does: the part after `history` held out, the rest train / validation. */
function prepareClient(file: string, history: number): Client {
  const { series } = markGaps(readClientCsv(join(TRACES, file), METRICS), MODEL.lookback + MODEL.horizon);
  const C = METRICS.length;
  const T = series.values.length / C;
  const testStart = Math.floor(T * history);
  const all = buildWindows(series.values.subarray(0, testStart * C), C, MODEL.lookback, MODEL.horizon);
  const before = sliceWindows(all, all.n - MODEL.maxWindows, all.n);
  const test = buildWindows(series.values.subarray(Math.max(0, testStart - MODEL.lookback) * C), C, MODEL.lookback, MODEL.horizon);
  const { train, validation } = chronologicalSplit(before, MODEL.validationFraction);
  return { data: { sessionWindows: () => ({ train, validation }) }, validation, test };
}

class InMemorySetup implements Setup {
  readonly agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`);
  #observer: FederationObserver | undefined;
  #cipher: AgentCipher | undefined;
  #result: InProcessFederationResult | undefined;
  readonly #clients = new Map<string, Client>();

  async run(): Promise<void> {
    const keys = await generateFederation({ federationId: 'rounds-memory' });
    this.#cipher = await AgentCipher.create(keys.agent);
    const bus = new MemoryBus();
    this.#observer = await FederationObserver.attach(await bus.connect({ clientId: 'observer', logger }), keys.coordinator.params.federationId, logger);
    const traces = readdirSync(TRACES).filter((f) => f.endsWith('.csv')).sort();
    const agents = this.agents.map((id, k) => {
      const c = prepareClient(traces[k]!, HISTORY[k]!);
      this.#clients.set(id, c);
      return { id, data: c.data, seedOffset: 1000 * k };
    });
    this.#result = await within(runInProcessFederation({ model: MODEL, agents, keys, bus, logger }), 120_000, 'the in-process session');
  }

  observer(): FederationObserver {
    return this.#observer!;
  }

  cipher(): AgentCipher {
    return this.#cipher!;
  }

  async rounds(): Promise<RoundSummary[]> {
    return this.#result!.history;
  }

  async model(agent: string): Promise<{ round: number; metrics: string[] } | null> {
    const fm = this.#result!.models.get(agent);
    return fm ? { round: fm.round, metrics: fm.model.metrics } : null;
  }

  /** The agent's federated forecast of its newest held-out window, as its daemon's predict computes it. */
  async predict(agent: string): Promise<Forecast> {
    const fm: FederatedModel | undefined = this.#result!.models.get(agent);
    if (!fm) throw new Error(`${agent} has no federated model`);
    const c = this.#clients.get(agent)!;
    const engines = this.#result!.engines;
    const ws = concatWindows([c.validation, c.test]);
    const known = new Int32Array(c.test.n).fill(c.validation.n);
    const values = await engines.exclusive(() => mixedForecast(engines, fm, ws, known, c.validation.n));
    const { horizon, metrics } = fm.model;
    const last = values.subarray((c.test.n - 1) * horizon * metrics.length);
    const forecast = Object.fromEntries(metrics.map((m, ch) => [m, Array.from({ length: horizon }, (_, h) => last[h * metrics.length + ch]!)]));
    return { round: fm.round, forecast };
  }

  async close(): Promise<void> {
    await this.#observer?.close();
    this.#cipher?.dispose();
    this.#result?.engines.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// (b), (c): real processes, through the embedded broker or a Mosquitto.

class ProcessSetup implements Setup {
  readonly agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`);
  #cluster: FederationCluster | undefined;
  #observer: FederationObserver | undefined;
  #cipher: AgentCipher | undefined;
  #mosquitto: MosquittoBroker | undefined;

  constructor(readonly broker: 'embedded' | 'mosquitto') {}

  async run(): Promise<void> {
    if (this.broker === 'mosquitto') this.#mosquitto = await startMosquitto();
    const cluster = await FederationCluster.create({ agents: AGENTS, broker: this.#mosquitto?.url ?? 'embedded', rounds: ROUNDS, intervalMs: 100, replayHistory: HISTORY, coordinatorLogLevel: 'info' });
    this.#cluster = cluster;
    this.#cipher = await AgentCipher.create(cluster.agentBundle);
    await cluster.startCoordinator();
    // Before any agent: the observer must see every update of the session.
    const t = await connectMqtt(cluster.brokerUrl, { clientId: 'observer', logger, reconnect: { minMs: 100, maxMs: 1000 } });
    this.#observer = await FederationObserver.attach(t, cluster.federation, logger);
    await cluster.runFirstSession(120_000);
  }

  observer(): FederationObserver {
    return this.#observer!;
  }

  cipher(): AgentCipher {
    return this.#cipher!;
  }

  async #json(which: 'agent' | 'coordinator', args: string[]): Promise<Record<string, unknown>> {
    const r = await this.#cluster!.cli(which, args);
    assert.is(r.code, 0, `icosfl-${which} ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  async rounds(): Promise<RoundSummary[]> {
    return (await this.#json('coordinator', ['rounds', '--config', this.#cluster!.coordinatorConfig, '--json'])).rounds as RoundSummary[];
  }

  #config(agent: string): string {
    return this.#cluster!.agents.find((a) => a.id === agent)!.config;
  }

  async model(agent: string): Promise<{ round: number; metrics: string[] } | null> {
    const st = await this.#json('agent', ['status', '--config', this.#config(agent), '--json']);
    return ((st.federation as Record<string, unknown> | undefined)?.model as { round: number; metrics: string[] } | null | undefined) ?? null;
  }

  async predict(agent: string): Promise<Forecast> {
    return (await this.#json('agent', ['predict', '--config', this.#config(agent), '--json'])) as unknown as Forecast;
  }

  async close(): Promise<void> {
    await this.#observer?.close();
    this.#cipher?.dispose();
    await this.#cluster?.close();
    await this.#mosquitto?.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// The one suite body.

const label = (r: RoundSummary) => (r.phase === 'fedavg' ? `fedavg ${r.step}` : r.phase);

function session(rounds: RoundSummary[]): RoundSummary[] {
  return rounds.filter((r) => r.session === 1);
}

function federationSuite(name: string, setup: Setup): void {
  const s = suite(name);
  let rounds: RoundSummary[] = [];

  s.before(async () => {
    await setup.run();
    rounds = session(await setup.rounds());
  });
  s.after(() => setup.close());

  s('the coordinator lists the session\'s rounds, each completed, in order', () => {
    assert.equal(rounds.map(label), ['ridge', 'fedavg 1', 'fedavg 2', 'fedavg 3', 'final']);
    rounds.forEach((r, i) => {
      assert.is(r.outcome, 'completed', `round ${r.round}: ${r.reason}`);
      assert.is(r.round, rounds[0]!.round + i, 'round ids increase by one');
      if (i > 0) assert.ok(r.announcedAt >= rounds[i - 1]!.closedAt, `round ${r.round} was announced after round ${rounds[i - 1]!.round} closed`);
      if (r.phase === 'final') assert.is(r.acks, AGENTS, 'every agent acknowledged the final global');
      else assert.is(r.participants, AGENTS, `round ${r.round}: every agent took part`);
    });
  });

  s('each FedAvg global decrypts to the plaintext weighted FedAvg of the updates seen for its round', () => {
    const fedavg = rounds.filter((r) => r.phase === 'fedavg');
    assert.is(fedavg.length, ROUNDS);
    for (const r of fedavg) {
      const updates = setup.observer().roundUpdates(r.round);
      assert.equal([...updates.keys()].sort(), setup.agents, `round ${r.round}: an update from every agent`);
      for (const u of updates.values()) assert.is(u.header.phase, 'fedavg');
      assert.is(new Set([...updates.values()].map((u) => u.header.samples)).size, AGENTS, 'the agents weigh differently (else weighted = plain mean)');
      const g = setup.observer().roundGlobal(r.round);
      const samples = [...updates.values()].reduce((a, u) => a + u.header.samples, 0);
      assert.is(g.clients, AGENTS);
      assert.is(g.totalSamples, samples, 'the global counts Σ n_k of the updates');
      assert.is(r.totalSamples, samples);
      const check = checkFedAvg(setup.cipher(), updates, g, modelParamCount(MODEL));
      assert.is(check.clients, AGENTS);
      assert.ok(check.maxAbs > 0.01, `round ${r.round}: the weights are not all (near) zero`);
      assert.ok(check.maxAbsDiff < TOLERANCE, `round ${r.round}: |global − FedAvg| reaches ${check.maxAbsDiff}`);
    }
  });

  s('the ridge global decrypts to the weighted mean of the ridge statistics seen', () => {
    const ridge = rounds.find((r) => r.phase === 'ridge')!;
    const updates = setup.observer().roundUpdates(ridge.round);
    assert.equal([...updates.keys()].sort(), setup.agents);
    for (const u of updates.values()) assert.is(u.header.phase, 'ridge');
    const g = setup.observer().roundGlobal(ridge.round);
    const check = checkFedAvg(setup.cipher(), updates, g, ridgePayloadLength(MODEL));
    assert.is(check.totalSamples, [...updates.values()].reduce((a, u) => a + u.header.samples, 0));
    assert.ok(check.maxAbsDiff < TOLERANCE, `ridge round ${ridge.round}: |global − mean| reaches ${check.maxAbsDiff} (values up to ${check.maxAbs})`);
  });

  s('the final global hands over the best FedAvg round\'s aggregate, unchanged', () => {
    const final = rounds.find((r) => r.phase === 'final')!;
    const g = setup.observer().roundGlobal(final.round);
    const best = g.selection?.bestRound;
    assert.ok(best !== undefined, 'the final global names its selection');
    assert.is(g.selection!.ridgeLambdas.length, METRICS.length, 'one pooled ridge penalty per channel head');
    if (best === 0) assert.is(g.body.length, 0, 'no round beat the initial model: an empty body');
    else {
      assert.ok(rounds.some((r) => r.phase === 'fedavg' && r.round === best), `best round ${best} is one of this session's FedAvg rounds`);
      assert.ok(Buffer.from(g.body).equals(Buffer.from(setup.observer().roundGlobal(best).body)), `the final body is round ${best}'s aggregate`);
    }
  });

  s('every agent installed the federated model and forecasts with it', async () => {
    const final = rounds.find((r) => r.phase === 'final')!;
    for (const agent of setup.agents) {
      const m = await setup.model(agent);
      assert.ok(m, `${agent} reports a federated model`);
      assert.is(m!.round, final.round, `${agent}'s model came with the final round`);
      assert.equal(m!.metrics, METRICS);
      const p = await setup.predict(agent);
      assert.is(p.round, final.round);
      assert.equal(Object.keys(p.forecast).sort(), [...METRICS].sort(), `${agent} forecasts the model's metrics`);
      for (const [metric, values] of Object.entries(p.forecast)) {
        assert.is(values.length, MODEL.horizon, `${agent} ${metric}: one value per step ahead`);
        assert.ok(values.every(Number.isFinite), `${agent} ${metric}: finite forecasts ${values}`);
      }
    }
  });

  s.run();
}

federationSuite('in-memory transport (runInProcessFederation)', new InMemorySetup());
federationSuite('embedded broker (coordinator and agent processes)', new ProcessSetup('embedded'));
federationSuite('Mosquitto (coordinator and agent processes)', new ProcessSetup('mosquitto'));
