import type { Logger } from '../../common/log.js';
import { modelParamCount, ridgeHeads, ridgePayloadLength, RIDGE_POOLED_LAMBDAS, type FederationModel } from '../../common/protocol/federation-model.js';
import { ackFor, lossFromWire, lossToWire, updateFor, type Ack, type Announce, type Global, type PresenceState, type Update, type WireLoss } from '../../common/protocol/messages.js';
import { trainWithValidation, type OutputCalibration } from '../trainer/forecaster.js';
import { headCount, headStatistics, packStatistics, personalHeads, setHead, solveHead, unpackStatistics } from '../trainer/ridge.js';
import { fitScaler, type Scaler } from '../trainer/scaler.js';
import type { WindowSet } from '../trainer/windows.js';
import { dropoutLayout, dropUnits, keptUnits, rescaleAverage } from '../../common/protocol/dropout.js';
import type { AgentCodec, AgentKeyring } from './codec.js';
import type { Engines } from './engines.js';
import type { FederatedModel, Piece } from './federated-model.js';
import type { LossRelease, UpdatePrivacy } from './privacy.js';

/**
 * One agent's side of a federation session, as simulate measures it (docs/ARCHITECTURE.md):
 * - first announcement of a session: take this session's windows (train / validation tail, in
 *   the federation's metrics), fit the scaler, train the local model;
 * - ridge round: send the mean head statistics of the random-feature model; on its global (the
 *   pooled statistics) report each pooled penalty's validation loss per head;
 * - FedAvg round: train `localEpochs` from the base global (or the seeded initial model), send
 *   the weights with the base's validation loss; on its global report the global's loss;
 * - final round: take the best round's global, fine-tune it, refit the ridge heads toward the
 *   pooled fit with the chosen penalties, calibrate every piece: a FederatedModel to forecast with.
 * No transport here (client.ts joins it to one), and no clock: the same code runs in every
 * agent of a simulation and in the daemon.
 */
export type SessionWindows = { train: WindowSet; validation: WindowSet };

type Release = (values: Float32Array, opts?: { base?: Float32Array; limit?: number }) => Float32Array;

export interface ParticipantData {
  /**
   * This session's windows in the model's metrics (original units), or why there are none: not
   * enough yet ('waiting-for-data'), or a metric this agent does not have ('incompatible').
   */
  sessionWindows(model: FederationModel): SessionWindows | { state: 'waiting-for-data' | 'incompatible'; reason: string; windows: number };
}

export type Answer =
  | { kind: 'update'; update: Update }
  /** Nothing to send; say so in presence. */
  | { kind: 'presence'; state: PresenceState; reason: string; windows?: number }
  /** The announcement needs a global this agent does not have yet: retry once it arrives. */
  | { kind: 'wait'; base: number }
  /** Nothing to do (a final round, or an announcement already answered and dropped). */
  | { kind: 'none' };

export interface ParticipantOptions {
  agent: string;
  /** Added to the model's seed for this agent's training calls (simulate: 1000 × client index). */
  seedOffset: number;
  /** The engines for a model configuration (built on first use; simulate shares one set among all agents). */
  engines: (model: FederationModel) => Engines;
  codec: AgentCodec;
  /** Key rotation (CKKS): every key epoch held; a session uses the one its announcement names. Absent: `codec` alone. */
  keyring?: AgentKeyring;
  data: ParticipantData;
  logger: Logger;
  /** Differential privacy ([privacy]): every update clipped and noised, rounds charged to a budget. */
  privacy?: UpdatePrivacy;
}

interface Session {
  session: number;
  configHash: string;
  model: FederationModel;
  data: SessionWindows;
  scaler: Scaler;
  local: Piece;
  ridge: { own: Float32Array; rows: number; pooled?: Float32Array; pooledRows?: number } | undefined;
  /** Newest FedAvg global of the session. */
  global: { round: number; weights: Float32Array } | undefined;
  /** Updates already built, by round: a resend must be the same bytes (the coordinator keeps the first). */
  sent: Map<number, Update>;
  /** The codec of the session's key epoch (every round of a session is under one key). */
  codec: AgentCodec;
  keyEpoch: number;
  /** Federated dropout: each FedAvg global's per-parameter average, by round, for the final round (which hands out one of them). */
  averaged: Map<number, Float32Array>;
}

export class Participant {
  readonly #o: ParticipantOptions;
  #session: Session | undefined;
  #result: FederatedModel | undefined;

  constructor(o: ParticipantOptions) {
    this.#o = o;
  }

  get agent(): string {
    return this.#o.agent;
  }

  /** The newest finished session's model (undefined before the first final round). */
  get result(): FederatedModel | undefined {
    return this.#result;
  }

  set result(fm: FederatedModel | undefined) {
    this.#result = fm;
  }

  get session(): number | undefined {
    return this.#session?.session;
  }

  /** Key epoch of the session in progress (the key its rounds are under). */
  get keyEpoch(): number | undefined {
    return this.#session?.keyEpoch;
  }

  /** Round of the newest global installed in this session. */
  get installedRound(): number | undefined {
    return this.#session?.global?.round;
  }

  #seed(extra: number): number {
    return this.#session!.model.seed + this.#o.seedOffset + extra;
  }

  #engines(): Engines {
    return this.#o.engines(this.#session!.model);
  }

  /** CKKS key ids this agent holds (presence `keys`); empty for plaintext. */
  keyIds(): string[] {
    if (this.#o.codec.codec !== 'ckks') return [];
    return this.#o.keyring ? this.#o.keyring.keyIds() : [this.#o.codec.keyId];
  }

  /** The codec for an announcement's key, or undefined when this agent does not hold it. */
  #codecFor(a: Announce): AgentCodec | undefined {
    const { codec, keyring } = this.#o;
    if (a.codec !== 'ckks') return codec;
    if (keyring) return keyring.forKey(a.keyId);
    return a.keyId === codec.keyId ? codec : undefined;
  }

  async answer(a: Announce): Promise<Answer> {
    const { codec } = this.#o;
    if (a.codec !== codec.codec) return { kind: 'presence', state: 'incompatible', reason: `the federation encodes updates as ${a.codec}; this agent is set up for ${codec.codec}` };
    let s = this.#session;
    const keyed = s && s.session === a.session && s.configHash === a.configHash && s.codec.keyId === a.keyId ? s.codec : this.#codecFor(a);
    if (!keyed) {
      return { kind: 'presence', state: 'incompatible', reason: `the round is under key epoch ${a.keyEpoch ?? 0} (key ${a.keyId}); this agent holds ${this.keyIds().join(', ') || 'no key'} (install that epoch's agent.json as federation.next_keys)` };
    }
    if (!s || s.session !== a.session || s.configHash !== a.configHash || s.codec !== keyed) {
      // An agent that withholds this round does not start a session (nor train for it): it keeps forecasting with its model.
      const dp = a.phase === 'final' ? undefined : this.#o.privacy?.admit(a);
      if (dp && !dp.contribute) return { kind: 'presence', state: 'withholding', reason: dp.reason };
      const begun = await this.#begin(a, keyed);
      if ('kind' in begun) return begun;
      s = begun;
    }
    if (a.phase === 'final') return { kind: 'none' };
    const cached = s.sent.get(a.round);
    if (cached) return { kind: 'update', update: cached };
    const dp = this.#o.privacy?.admit(a);
    if (dp && !dp.contribute) return { kind: 'presence', state: 'withholding', reason: dp.reason };
    const release = dp?.release;
    const releaseLoss = dp?.releaseLoss;
    const update = await this.#engines().exclusive(() => (a.phase === 'ridge' ? this.#ridgeUpdate(s, a, release) : this.#fedavgUpdate(s, a, release, releaseLoss)));
    if (!update) return { kind: 'wait', base: a.base };
    s.sent.set(a.round, update);
    return { kind: 'update', update };
  }

  /** A new session: its windows, scaler and local model. */
  async #begin(a: Announce, codec: AgentCodec): Promise<Session | Answer> {
    const { data, logger } = this.#o;
    const windows = data.sessionWindows(a.model);
    if ('state' in windows) return { kind: 'presence', state: windows.state, reason: windows.reason, windows: windows.windows };
    const m = a.model;
    const engines = this.#o.engines(m);
    const scaler = fitScaler(windows.train);
    const s: Session = { session: a.session, configHash: a.configHash, model: m, data: windows, scaler, local: { weights: engines.initial, calibration: undefined }, ridge: undefined, global: undefined, sent: new Map(), codec, keyEpoch: a.keyEpoch ?? 0, averaged: new Map() };
    this.#session = s;
    s.local = await engines.exclusive(async () => {
      const f = engines.model;
      f.scaler = scaler;
      f.calibration = undefined;
      f.setWeights(engines.initial);
      f.resetOptimizer();
      // The local model gets the federation's whole epoch budget, best validation epoch kept: equal compute.
      const r = await trainWithValidation(f, windows.train, windows.validation, { epochs: m.rounds * m.localEpochs, batchSize: m.batchSize, seed: this.#seed(0) });
      logger.info({ session: a.session, windows: windows.train.n, validation: windows.validation.n, bestEpoch: r.bestEpoch, seconds: r.seconds }, 'local model trained for the session');
      return this.#calibrated(f.getWeights(), windows);
    });
    return s;
  }

  /** The piece's weights with their output calibration fitted (or none when the federation does not calibrate). Inside exclusive. */
  #calibrated(weights: Float32Array, data: SessionWindows): Piece {
    const f = this.#engines().model;
    f.setWeights(weights);
    f.calibration = undefined;
    const calibration = this.#session!.model.calibrate ? f.calibrateOutput(data.train, data.validation) : undefined;
    f.calibration = undefined;
    return { weights, calibration };
  }

  /** n_k and the windows behind it; 1 and 1 under DP (a data-dependent weight would scale the agent's sensitivity, and the count itself says something about its data). */
  #samples(s: Session, a: Announce): { samples: number; windows: number } {
    if (this.#o.privacy) return { samples: 1, windows: 1 };
    const windows = s.data.train.n;
    return { windows, samples: Math.min(windows, a.weightCap) };
  }

  #ridgeUpdate(s: Session, a: Announce, release?: Release): Update {
    const f = this.#engines().ridge!;
    f.scaler = s.scaler;
    const stats = headStatistics(f, s.data.train);
    const own = packStatistics(stats);
    s.ridge = { own, rows: stats[0]!.rows };
    const { samples, windows } = this.#samples(s, a);
    // The agent's own statistics stay exact (its personal refit); only what leaves is noised.
    return updateFor(a, this.#o.agent, { samples, windows, body: s.codec.encode(release ? release(own, { limit: s.codec.maxAbsValue }) : own, samples) });
  }

  async #fedavgUpdate(s: Session, a: Announce, release?: Release, releaseLoss?: LossRelease): Promise<Update | undefined> {
    let base: Float32Array;
    const engines = this.#engines();
    if (a.base === 0) base = engines.initial;
    else if (s.global?.round === a.base) base = s.global.weights;
    else return undefined;
    const f = engines.model;
    f.scaler = s.scaler;
    f.calibration = undefined;
    f.setWeights(base);
    const baseLoss = f.relativeLoss(s.data.validation);
    // Federated dropout: the sub-model without this agent's dropped units (zeroed: they get no gradient, see dropout.ts).
    const layout = a.dropout ? dropoutLayout(s.model) : undefined;
    const kept = layout && a.dropout ? keptUnits(a.dropout, this.#o.agent, layout.units) : undefined;
    if (layout && kept) {
      base = dropUnits(base, layout, kept);
      f.setWeights(base);
    }
    // Adam's moments belong to one client's landscape; each round starts clean.
    f.resetOptimizer();
    await f.train(s.data.train, { epochs: s.model.localEpochs, batchSize: s.model.batchSize, seed: this.#seed(a.step) });
    const { samples, windows } = this.#samples(s, a);
    let trained = f.getWeights();
    // Exactly zero where dropped, whatever the training step did there: the coordinator's per-unit weights assume it.
    if (layout && kept) trained = dropUnits(trained, layout, kept);
    let values = release ? release(trained, { base, limit: s.codec.maxAbsValue }) : trained;
    // Noise (DP) lands on dropped units too; they must stay out of the sum.
    if (layout && kept && release) values = dropUnits(values, layout, kept);
    // Under DP the update is base + clip(trained − base) + noise: the delta is what is bounded;
    // baseLoss is noised, and sent only where the coordinator uses it (the initial model's score).
    const reported = !releaseLoss ? { baseLoss: lossToWire(baseLoss) } : a.base === 0 ? { baseLoss: lossToWire(releaseLoss(baseLoss)) } : {};
    return updateFor(a, this.#o.agent, { samples, windows, ...reported, body: s.codec.encode(values, samples) });
  }

  /** Installs a global; the acknowledgement to send (undefined: not for this agent's session). */
  async install(g: Global, a: Announce | undefined): Promise<Ack | undefined> {
    const s = this.#session;
    if (!s || s.session !== g.session) return undefined;
    if ((g.keyEpoch ?? s.keyEpoch) !== s.keyEpoch) return ackFor(g, this.#o.agent, { ok: false, reason: `the global is of key epoch ${g.keyEpoch}; this session runs under epoch ${s.keyEpoch}` });
    try {
      return await this.#engines().exclusive(() => {
        if (g.phase === 'ridge') return this.#installRidge(s, g);
        if (g.phase === 'fedavg') return this.#installFedavg(s, g);
        return this.#installFinal(s, g, a);
      });
    } catch (err) {
      this.#o.logger.error({ err, round: g.round, phase: g.phase }, 'could not install the global');
      return ackFor(g, this.#o.agent, { ok: false, reason: (err as Error).message.slice(0, 400) });
    }
  }

  #installRidge(s: Session, g: Global): Ack {
    const f = this.#engines().ridge;
    if (!f || !s.ridge) return ackFor(g, this.#o.agent, { ok: false, reason: 'no ridge statistics of this session on this agent (it joined after the ridge round)' });
    const m = s.model;
    const pooledValues = s.codec.decode(g.body, ridgePayloadLength(m), g);
    s.ridge.pooled = pooledValues;
    s.ridge.pooledRows = g.totalSamples;
    const heads = headCount(f);
    const { features, outputs } = ridgeShape(m);
    const pooled = unpackStatistics(pooledValues, features, outputs, g.totalSamples, heads);
    f.scaler = s.scaler;
    f.calibration = undefined;
    const ridgeLosses: WireLoss[][] = pooled.map((stats, head) =>
      RIDGE_POOLED_LAMBDAS.map((lambda) => {
        const beta = solveHead(stats, lambda);
        if (!beta) return null;
        setHead(f, beta);
        return lossToWire(f.relativeLoss(s.data.validation, heads > 1 ? head : undefined));
      }),
    );
    if (this.#o.privacy) {
      const release = this.#o.privacy.lossRelease(g.round);
      // Noised, an unsolvable penalty (null) included: that too says something about the data.
      return ackFor(g, this.#o.agent, { ok: true, ...(release ? { ridgeLosses: ridgeLosses.map((row) => row.map((x) => lossToWire(release(lossFromWire(x))))) } : {}) });
    }
    return ackFor(g, this.#o.agent, { ok: true, ridgeLosses });
  }

  #installFedavg(s: Session, g: Global): Ack {
    const f = this.#engines().model;
    const weights = this.#averaged(s, g, s.codec.decode(g.body, modelParamCount(s.model), g));
    s.global = { round: g.round, weights };
    f.scaler = s.scaler;
    f.calibration = undefined;
    f.setWeights(weights);
    const loss = f.relativeLoss(s.data.validation);
    if (this.#o.privacy) {
      // Only a round this agent was charged for may carry its loss, noised.
      const release = this.#o.privacy.lossRelease(g.round);
      return ackFor(g, this.#o.agent, { ok: true, ...(release ? { loss: lossToWire(release(loss)) } : {}) });
    }
    return ackFor(g, this.#o.agent, { ok: true, loss: lossToWire(loss) });
  }

  /**
   * Federated dropout: the global's Σ n_k·w_k / Σ n_k made a per-parameter average (each unit
   * divided by the Σ n_k of those who kept it, dropout.ts); units no one kept keep the base
   * (the session's newest global, or the initial model). Without unitWeights: as decoded.
   */
  #averaged(s: Session, g: Global, decoded: Float32Array): Float32Array {
    const layout = dropoutLayout(s.model);
    if (!g.unitWeights || !layout) return decoded;
    const out = rescaleAverage(decoded, g.totalSamples, g.unitWeights, s.global?.weights ?? this.#engines().initial, layout);
    if (g.phase === 'fedavg') s.averaged.set(g.round, out);
    return out;
  }

  async #installFinal(s: Session, g: Global, a: Announce | undefined): Promise<Ack> {
    const { logger } = this.#o;
    const engines = this.#engines();
    const m = s.model;
    const selection = g.selection ?? a?.selection;
    if (!selection) return ackFor(g, this.#o.agent, { ok: false, reason: 'the final global names no selection' });
    const best = selection.bestRound === 0 ? engines.initial : (s.averaged.get(selection.bestRound) ?? this.#averaged(s, g, s.codec.decode(g.body, modelParamCount(m), g)));
    const f = engines.model;
    f.scaler = s.scaler;
    const fedavg = this.#calibrated(best, s.data);
    f.setWeights(best);
    f.resetOptimizer();
    if (m.fineTuneEpochs > 0) await trainWithValidation(f, s.data.train, s.data.validation, { epochs: m.fineTuneEpochs, batchSize: m.batchSize, seed: this.#seed(m.rounds + 1) });
    const fineTuned = this.#calibrated(f.getWeights(), s.data);
    const ridge = this.#personalRidge(s, selection.ridgeLambdas);
    this.#result = {
      session: s.session,
      round: g.round,
      bestRound: selection.bestRound,
      model: m,
      configHash: s.configHash,
      scaler: s.scaler,
      fedavg,
      fineTuned,
      local: s.local,
      ridge,
      createdAt: new Date().toISOString(),
    };
    logger.info({ session: s.session, round: g.round, bestRound: selection.bestRound, ridge: ridge !== undefined }, 'federated model installed');
    return ackFor(g, this.#o.agent, { ok: true });
  }

  /** Each head refitted toward its pooled fit (penalties per step on this agent's validation tail), calibrated per head. */
  #personalRidge(s: Session, lambdas: number[]): FederatedModel['ridge'] {
    const f = this.#engines().ridge;
    const r = s.ridge;
    if (!f || !r) return undefined;
    const heads = headCount(f);
    const { features, outputs } = ridgeShape(s.model);
    let priors: (Float64Array | undefined)[];
    if (this.#o.privacy && lambdas.length === 0) {
      // Under DP the noised pooled statistics may leave no penalty that solves (docs/decisions.md D9):
      // the agent's own ridge fit (prior 0) then stands in, local data only, no privacy cost.
      priors = Array.from({ length: heads }, () => new Float64Array(features * outputs));
    } else {
      if (!r.pooled || r.pooledRows === undefined || lambdas.length === 0 || lambdas.length !== heads) return undefined;
      const pooled = unpackStatistics(r.pooled, features, outputs, r.pooledRows, heads);
      priors = pooled.map((stats, h) => solveHead(stats, lambdas[h]!));
      // Under DP the noised losses always name a penalty, which the noised statistics may not solve: own fit, as above.
      if (this.#o.privacy) priors = priors.map((p) => p ?? new Float64Array(features * outputs));
    }
    if (priors.some((p) => !p)) return undefined;
    f.scaler = s.scaler;
    f.calibration = undefined;
    const mine = unpackStatistics(r.own, features, outputs, r.rows, heads);
    const personal = personalHeads(f, mine, priors as Float64Array[], s.data.validation);
    const calibrations: (OutputCalibration | undefined)[] = personal.map((p) => {
      setHead(f, p.beta);
      f.calibration = undefined;
      const c = s.model.calibrate ? f.calibrateOutput(s.data.train, s.data.validation) : undefined;
      f.calibration = undefined;
      return c;
    });
    return { betas: personal.map((p) => p.beta), calibrations, lambdas };
  }
}

/** The ridge model's feature and output counts (inputs + random features; steps ahead per head). */
export function ridgeShape(m: FederationModel): { features: number; outputs: number; heads: number } {
  const perChannel = m.channelIndependent ? 1 : m.metrics.length;
  return { features: m.lookback * perChannel + m.ridgeFeatures, outputs: m.horizon * perChannel, heads: ridgeHeads(m) };
}
