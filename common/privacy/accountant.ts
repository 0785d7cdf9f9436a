import { epsilonFromRdp, RDP_ORDERS, rdpOfStep, type PrivacySpent } from './rdp.js';

/**
 * The composition of every release so far: groups of steps of the subsampled Gaussian
 * mechanism, each with its sampling rate and noise multiplier (a changed configuration starts
 * a new group, as Opacus's RDPAccountant keeps its history). Pure; the agent persists it
 * (agent/federation/privacy.ts), simulate keeps it in memory.
 */
export interface MechanismSteps {
  /** Probability the agent takes part in a step (Poisson sampling). */
  samplingRate: number;
  noiseMultiplier: number;
  steps: number;
}

export class PrivacyAccountant {
  readonly #groups: MechanismSteps[];

  constructor(history: readonly MechanismSteps[] = []) {
    this.#groups = [];
    for (const g of history) this.compose(g.samplingRate, g.noiseMultiplier, g.steps);
  }

  /** Adds `steps` steps (validates its arguments through rdpOfStep). */
  compose(samplingRate: number, noiseMultiplier: number, steps = 1): void {
    if (!(Number.isInteger(steps) && steps >= 0)) throw new RangeError(`steps must be an integer ≥ 0, got ${steps}`);
    rdpOfStep(samplingRate, noiseMultiplier, 2);
    if (steps === 0) return;
    const last = this.#groups[this.#groups.length - 1];
    if (last && last.samplingRate === samplingRate && last.noiseMultiplier === noiseMultiplier) last.steps += steps;
    else this.#groups.push({ samplingRate, noiseMultiplier, steps });
  }

  get steps(): number {
    return this.#groups.reduce((a, g) => a + g.steps, 0);
  }

  history(): MechanismSteps[] {
    return this.#groups.map((g) => ({ ...g }));
  }

  /** RDP at each of RDP_ORDERS of everything composed, plus `extra` (what one more step would add). */
  rdp(extra?: MechanismSteps): number[] {
    const groups = extra ? [...this.#groups, extra] : this.#groups;
    return RDP_ORDERS.map((a) => groups.reduce((sum, g) => sum + g.steps * rdpOfStep(g.samplingRate, g.noiseMultiplier, a), 0));
  }

  spent(delta: number, extra?: MechanismSteps): PrivacySpent {
    return epsilonFromRdp(this.rdp(extra), delta);
  }
}

/** ε of one step alone: what each round costs on its own (reported beside the cumulative figure). */
export function epsilonOfOneStep(samplingRate: number, noiseMultiplier: number, delta: number): number {
  return new PrivacyAccountant([{ samplingRate, noiseMultiplier, steps: 1 }]).spent(delta).epsilon;
}
