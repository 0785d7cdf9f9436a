import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { IcosflError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { epsilonOfOneStep, PrivacyAccountant, type MechanismSteps } from '../../common/privacy/accountant.js';
import { clampAbs, cryptoUniform, privatise, type UniformSource } from '../../common/privacy/gaussian.js';
import { combinedNoiseMultiplier, lossesPerRound, privatiseLoss } from '../../common/privacy/losses.js';
import type { Announce } from '../../common/protocol/messages.js';

/**
 * The agent's differential privacy ([privacy] in agent.toml; README "Differential privacy"):
 * every payload that leaves the agent is clipped to an L2 bound and noised before encryption
 * (and every validation loss it reports, clipped to [0, loss_clip] and noised: common/privacy/losses.ts),
 * each round is composed into an RDP accountant kept in the state directory, and the agent
 * withholds its updates once the next round would take ε over the budget.
 *
 * The unit protected is the agent (user-level DP): whatever an agent's windows, its update
 * moves by at most the clip bound (zero-out adjacency: an agent's data against none), and each
 * update carries its own full noise, so the guarantee holds for one update on its own — every
 * agent holds the federation's key, so the sum is no safer than its parts. Weights are fixed to
 * 1 (n_k would be data-dependent and would scale one agent's sensitivity).
 */
export interface PrivacySettings {
  enabled: boolean;
  noise_multiplier: number;
  clip_norm: number;
  ridge_clip_norm: number;
  delta: number;
  epsilon_budget: number;
  sampling_rate: number;
  /** σ_l of the validation losses reported (common/privacy/losses.ts). */
  loss_noise_multiplier: number;
  /** L: reported relative losses are clipped to [0, L]. */
  loss_clip: number;
}

export const PRIVACY_STATE_FILE = 'privacy-accountant.json';

/** What the agent does with a round, as far as privacy goes. */
export type PrivacyDecision =
  /** release: clipped and noised (around `base` for a model update), then clamped to ±limit (the codec's range: post-processing, free of privacy cost). */
  | { contribute: true; release(values: Float32Array, opts?: { base?: Float32Array; limit?: number }): Float32Array; releaseLoss: LossRelease }
  | { contribute: false; reason: string };

/** A validation loss as it may leave the agent this round: clipped and noised (common/privacy/losses.ts). */
export type LossRelease = (loss: number) => number;

/** Where the accountant's history lives: a file in the state directory, or memory (simulate). */
export interface AccountantStore {
  readonly where: string;
  /** The history so far; throws STATE_CORRUPT when it cannot be read back. */
  load(): MechanismSteps[];
  save(history: MechanismSteps[], rounds: number): void;
}

const stateSchema = z
  .object({
    format: z.literal(1),
    history: z.array(z.object({ samplingRate: z.number().min(0).max(1), noiseMultiplier: z.number().positive().finite(), steps: z.number().int().min(0) }).strict()),
    /** Rounds charged (sampled or not). */
    rounds: z.number().int().min(0),
    updatedAt: z.string(),
  })
  .strict();

export function fileAccountantStore(stateDir: string): AccountantStore {
  const path = join(stateDir, PRIVACY_STATE_FILE);
  return {
    where: path,
    load() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new IcosflError('STATE_CORRUPT', `privacy state ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
      }
      let parsed: z.infer<typeof stateSchema>;
      try {
        parsed = stateSchema.parse(JSON.parse(text));
      } catch (cause) {
        throw new IcosflError('STATE_CORRUPT', `privacy state ${path} is not a valid accountant file`, { cause });
      }
      return parsed.history;
    },
    save(history, rounds) {
      writeFileAtomic(path, [Buffer.from(JSON.stringify({ format: 1, history, rounds, updatedAt: new Date().toISOString() }) + '\n')], { kind: 'privacy' });
    },
  };
}

export function memoryAccountantStore(): AccountantStore {
  let kept: MechanismSteps[] = [];
  return { where: 'memory', load: () => kept.map((g) => ({ ...g })), save: (h) => (kept = h.map((g) => ({ ...g }))) };
}

export interface PrivacyStatus {
  enabled: true;
  /** contributing | budget-spent | state-unusable */
  state: 'contributing' | 'budget-spent' | 'state-unusable';
  reason: string | null;
  epsilon: number;
  delta: number;
  epsilon_budget: number;
  /** ε of one round on its own at the current settings. */
  epsilon_per_round: number;
  noise_multiplier: number;
  /** σ_l of the reported validation losses, and the multiplier a round is charged at (update and losses together). */
  loss_noise_multiplier: number;
  round_noise_multiplier: number;
  clip_norm: number;
  ridge_clip_norm: number;
  loss_clip: number;
  sampling_rate: number;
  rounds_charged: number;
  rounds_contributed: number;
  last_round: number | null;
  state_file: string;
}

export interface UpdatePrivacyOptions {
  settings: PrivacySettings;
  store: AccountantStore;
  logger: Logger;
  /** The noise and sampling source (tests); node:crypto otherwise. */
  random?: UniformSource;
}

export class UpdatePrivacy {
  readonly #s: PrivacySettings;
  readonly #store: AccountantStore;
  readonly #log: Logger;
  readonly #random: UniformSource;
  #accountant: PrivacyAccountant | undefined;
  /** Why the state cannot be used (a corrupt or unwritable file): nothing is sent until an operator acts. */
  #unusable: string | undefined;
  #budgetSpent = false;
  #lastReason: string | null = null;
  #contributed = 0;
  #lastRound: number | undefined;
  /** The decision per round id: a retry of the same announcement (waiting for its base) is not charged twice. */
  readonly #decided = new Map<number, PrivacyDecision>();

  constructor(o: UpdatePrivacyOptions) {
    validateSettings(o.settings);
    this.#s = o.settings;
    this.#store = o.store;
    this.#log = o.logger;
    this.#random = o.random ?? cryptoUniform();
    try {
      this.#accountant = new PrivacyAccountant(o.store.load());
    } catch (err) {
      this.#unusable = `${(err as Error).message}: this agent sends no update until the file is restored (deleting it forgets the privacy budget already spent)`;
      this.#log.error({ err, file: o.store.where }, 'privacy state unusable; contributing nothing');
    }
  }

  #perRound: number | undefined;
  /** ε of one round on its own at these settings (computed once). */
  get epsilonPerRound(): number {
    this.#perRound ??= epsilonOfOneStep(this.#s.sampling_rate, this.roundNoiseMultiplier, this.#s.delta);
    return this.#perRound;
  }

  /** A round releases the update and its validation losses: one Gaussian mechanism of this multiplier. */
  get roundNoiseMultiplier(): number {
    return combinedNoiseMultiplier(this.#s.noise_multiplier, this.#s.loss_noise_multiplier);
  }

  /**
   * How a loss of round `round` may be reported: noised when this agent contributed to it (the
   * round was charged for its losses), else not at all (null: an agent restarted since, or not
   * sampled). Only rounds admitted in this process are known, so a restart fails closed.
   */
  lossRelease(round: number): LossRelease | undefined {
    const d = this.#decided.get(round);
    return d?.contribute ? d.releaseLoss : undefined;
  }

  /**
   * Whether this agent contributes to the announced round. Each announced round is charged once
   * at the sampling rate whether the agent is sampled or not (Poisson subsampling's accounting),
   * and charged before anything is sent, persisted first, so a crash cannot send uncharged noise.
   */
  admit(a: Announce): PrivacyDecision {
    const known = this.#decided.get(a.round);
    if (known) return known;
    const d = this.#decide(a);
    this.#decided.set(a.round, d);
    for (const r of this.#decided.keys()) if (r < a.round - 64) this.#decided.delete(r);
    if (!d.contribute) this.#lastReason = d.reason;
    return d;
  }

  #decide(a: Announce): PrivacyDecision {
    if (this.#unusable || !this.#accountant) return { contribute: false, reason: this.#unusable ?? 'privacy state unusable' };
    const s = this.#s;
    const acc = this.#accountant;
    const step: MechanismSteps = { samplingRate: s.sampling_rate, noiseMultiplier: this.roundNoiseMultiplier, steps: 1 };
    const next = acc.spent(s.delta, step).epsilon;
    if (next > s.epsilon_budget) {
      const now = acc.spent(s.delta).epsilon;
      const reason = `privacy budget spent: ε ${now.toFixed(3)} of ${s.epsilon_budget} (δ ${s.delta}) after ${acc.steps} rounds; one more would make it ${next.toFixed(3)}`;
      if (!this.#budgetSpent) this.#log.warn({ event: 'privacy-budget-spent', round: a.round, epsilon: now, next, budget: s.epsilon_budget, delta: s.delta }, 'privacy budget spent; no more updates, forecasting with the current model');
      this.#budgetSpent = true;
      return { contribute: false, reason };
    }
    acc.compose(s.sampling_rate, this.roundNoiseMultiplier, 1);
    try {
      this.#store.save(acc.history(), acc.steps);
    } catch (err) {
      // The round stays charged in memory (the stricter side); nothing is sent without a record.
      // atomic-file's STATE_WRITE_FAILED carries the errno in details; other errors their own code.
      const errno = ((err as { details?: { errno?: string } }).details?.errno ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message) as string;
      this.#unusable = `privacy state ${this.#store.where} could not be written (${errno})`;
      this.#log.error({ err, file: this.#store.where }, 'privacy state not saved; contributing nothing');
      return { contribute: false, reason: this.#unusable };
    }
    if (s.sampling_rate < 1 && this.#random.next() > s.sampling_rate) return { contribute: false, reason: `not sampled this round (privacy.sampling_rate ${s.sampling_rate})` };
    const spent = acc.spent(s.delta);
    const roundEpsilon = this.epsilonPerRound;
    this.#lastReason = null;
    const perRound = Math.max(1, lossesPerRound(a.phase, a.base, a.model));
    return {
      contribute: true,
      releaseLoss: (loss) => privatiseLoss(loss, { clip: s.loss_clip, noiseMultiplier: s.loss_noise_multiplier, perRound, source: this.#random }),
      release: (values, opts = {}) => {
        const { base, limit = Infinity } = opts;
        const clip = base ? s.clip_norm : s.ridge_clip_norm;
        const { released, norm } = privatise(values, { clipNorm: clip, noiseMultiplier: s.noise_multiplier, ...(base ? { base } : {}), source: this.#random });
        const clamped = clampAbs(released, limit);
        this.#contributed++;
        this.#lastRound = a.round;
        this.#log.info(
          { round: a.round, phase: a.phase, epsilon_round: roundEpsilon, epsilon: spent.epsilon, delta: s.delta, epsilon_budget: s.epsilon_budget, order: spent.order, norm, clipped: norm > clip, clamped },
          'differentially private update released',
        );
        return released;
      },
    };
  }

  status(): PrivacyStatus {
    const s = this.#s;
    const spent = this.#accountant?.spent(s.delta);
    return {
      enabled: true,
      state: this.#unusable ? 'state-unusable' : this.#budgetSpent ? 'budget-spent' : 'contributing',
      reason: this.#unusable ?? (this.#budgetSpent ? this.#lastReason : null),
      epsilon: spent?.epsilon ?? NaN,
      delta: s.delta,
      epsilon_budget: s.epsilon_budget,
      epsilon_per_round: this.epsilonPerRound,
      noise_multiplier: s.noise_multiplier,
      loss_noise_multiplier: s.loss_noise_multiplier,
      round_noise_multiplier: this.roundNoiseMultiplier,
      clip_norm: s.clip_norm,
      ridge_clip_norm: s.ridge_clip_norm,
      loss_clip: s.loss_clip,
      sampling_rate: s.sampling_rate,
      rounds_charged: this.#accountant?.steps ?? 0,
      rounds_contributed: this.#contributed,
      last_round: this.#lastRound ?? null,
      state_file: this.#store.where,
    };
  }
}

/** The settings' rules, for callers that do not come through the config schema (simulate, tests). */
export function validateSettings(s: PrivacySettings): void {
  const bad = (key: string, want: string, got: number) => new IcosflError('CONFIG_INVALID', `privacy.${key} must be ${want}, got ${got}`);
  if (!(s.noise_multiplier > 0 && Number.isFinite(s.noise_multiplier))) throw bad('noise_multiplier', 'a positive number', s.noise_multiplier);
  if (!(s.clip_norm > 0 && Number.isFinite(s.clip_norm))) throw bad('clip_norm', 'a positive number', s.clip_norm);
  if (!(s.ridge_clip_norm > 0 && Number.isFinite(s.ridge_clip_norm))) throw bad('ridge_clip_norm', 'a positive number', s.ridge_clip_norm);
  if (!(s.delta > 0 && s.delta < 1)) throw bad('delta', 'in (0, 1)', s.delta);
  if (!(s.epsilon_budget > 0)) throw bad('epsilon_budget', 'a positive number', s.epsilon_budget);
  if (!(s.sampling_rate > 0 && s.sampling_rate <= 1)) throw bad('sampling_rate', 'in (0, 1]', s.sampling_rate);
  if (!(s.loss_noise_multiplier > 0 && Number.isFinite(s.loss_noise_multiplier))) throw bad('loss_noise_multiplier', 'a positive number', s.loss_noise_multiplier);
  if (!(s.loss_clip > 0 && Number.isFinite(s.loss_clip))) throw bad('loss_clip', 'a positive number', s.loss_clip);
}
