import { createHash } from 'node:crypto';
import { z, ZodError } from 'zod';

/**
 * What a federation trains, and how: the one configuration object behind the coordinator's
 * `[model]` section (announced to every agent in each round, so all agents train the same
 * layout), `icosfl-simulate run`'s defaults, and the agent's local trainer defaults
 * (agent/trainer/config.ts takes its values from DEFAULT_FEDERATION_MODEL). Simulate measures
 * exactly this pipeline (docs/ARCHITECTURE.md), so the daemon forecasts with what the accuracy
 * figures describe. Why each default: docs/decisions.md.
 *
 * A session (coordinator/round) is one ridge round (when ridgeFeatures > 0), `rounds` FedAvg
 * rounds of `localEpochs` epochs from the seeded initial model, then a final round that hands
 * every agent the best round's global model (ranked by the agents' validation reports) and the
 * ridge penalties; each agent then fine-tunes it for `fineTuneEpochs`, trains its own local
 * model for rounds × localEpochs epochs, and forecasts with the mixture of the three
 * (agent/federation/participant.ts).
 */
export const MODEL_KINDS = ['linear', 'mlp', 'lstm'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** Metric names travel in every announcement: the same rule as the agent's catalogue names. */
const METRIC_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export const federationModelSchema = z
  .object({
    metrics: z
      .array(z.string().regex(METRIC_NAME, 'metric names are 1–64 of [a-z0-9_], starting with a letter'))
      .min(1)
      .max(64)
      .refine((m) => new Set(m).size === m.length, 'must not name a metric twice')
      .describe('The channels, in order: every agent takes these columns from its ring (or CSV), so it must sample them.'),
    kind: z.enum(MODEL_KINDS).describe("'mlp' on the flattened lookback with a residual target; 'linear' (autoregressive); 'lstm'."),
    lookback: z.number().int().min(2).max(1024).describe('Past samples the model sees.'),
    horizon: z.number().int().min(1).max(256).describe('Future samples it predicts (steps ahead).'),
    hiddenUnits: z.number().int().min(1).max(4096).describe("Hidden units of the MLP layer or LSTM cell (unused by 'linear')."),
    channelIndependent: z.boolean().describe('true: one model shared by every channel, each forecast from its own history; false: one model over all channels jointly.'),
    batchSize: z.number().int().min(1).max(65535).describe('Windows per training step.'),
    learningRate: z.number().positive().max(1).describe("Adam's learning rate."),
    localEpochs: z.number().int().min(1).max(1000).describe('Local epochs per FedAvg round.'),
    rounds: z.number().int().min(1).max(10_000).describe('FedAvg rounds per session.'),
    fineTuneEpochs: z.number().int().min(0).max(1000).describe('Epochs each agent fine-tunes the final global model on its own data (0: none).'),
    ridgeFeatures: z.number().int().min(0).max(4096).describe('Random features of the federated ridge model; 0 leaves it (and the ridge round) out.'),
    mixMemory: z.number().int().min(0).max(100_000).describe("Mixture memory in windows (agent/trainer/mixture.ts RECENT_MEMORY): a window's weight falls by e for every mix_memory newer ones; 0 fits the shares once on the validation tail."),
    validationFraction: z.number().min(0.05).max(0.5).describe("Chronological validation tail of each agent's windows."),
    calibrate: z.boolean().describe('Output calibration per agent and model (Forecaster.calibrateOutput).'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).describe("Seed of the initial model's weights and of shuffling."),
    maxWindows: z.number().int().min(16).max(10_000_000).describe("Only an agent's newest windows train: bounds a round's time and memory."),
    minWindows: z.number().int().min(1).max(10_000_000).describe('Training windows an agent needs to take part (fewer: it says so in its presence).'),
    dropoutRate: z
      .number()
      .min(0)
      .max(0.9)
      .describe("Federated dropout (Caldas et al. 2018; 'mlp' only): the fraction of hidden units each agent drops in each FedAvg round, chosen from the announcement's seed and its id (common/protocol/dropout.ts); 0: off."),
  })
  .strict();

export type FederationModel = z.infer<typeof federationModelSchema>;

/**
 * The shipped defaults. Lookback 12, 32 hidden units, batch 32, 40 rounds of 2 local epochs,
 * 4 fine-tuning epochs, 256 ridge features and a mixture memory of 6 windows are what the
 * accuracy benchmark measured best on real traces (docs/decisions.md, D1–D3); the agent's
 * longer defaults of earlier versions (lookback 30, 64 hidden units) were measured against them
 * there too.
 */
export const DEFAULT_FEDERATION_MODEL: Readonly<FederationModel> = Object.freeze({
  metrics: ['cpu_busy_pct', 'mem_used_pct'],
  kind: 'mlp',
  lookback: 12,
  horizon: 5,
  hiddenUnits: 32,
  channelIndependent: true,
  batchSize: 32,
  learningRate: 0.002,
  localEpochs: 2,
  rounds: 40,
  fineTuneEpochs: 4,
  ridgeFeatures: 256,
  mixMemory: 6,
  validationFraction: 0.2,
  calibrate: true,
  seed: 42,
  maxWindows: 5000,
  minWindows: 8,
  dropoutRate: 0,
});

/** Parses a model config, defaults filled in; ZodError on a bad one (callers say where it came from). */
export function parseFederationModel(input: unknown): FederationModel {
  const m = federationModelSchema.parse({ ...DEFAULT_FEDERATION_MODEL, ...(input as object) });
  if (m.dropoutRate > 0 && m.kind !== 'mlp') throw new ZodError([{ code: 'custom', path: ['dropoutRate'], message: `federated dropout drops hidden units of the 'mlp' model; kind '${m.kind}' takes dropout rate 0` }]);
  return m;
}

/** SHA-256 (hex, first 16 bytes) of the config in a canonical key order: agents compare it, not the object. */
export function modelConfigHash(m: FederationModel): string {
  // dropoutRate 0 (off) is left out, so configs from before the key keep their hash (and their session).
  const keys = (Object.keys(m).sort() as (keyof FederationModel)[]).filter((k) => !(k === 'dropoutRate' && m.dropoutRate === 0));
  const canonical = JSON.stringify(keys.map((k) => [k, m[k]]));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

/**
 * Ridge penalties each head's pooled fit is tried with (agent/trainer/ridge.ts); agents report
 * each one's validation loss in this order and the coordinator picks per head. On the
 * standardised features' scale.
 */
export const RIDGE_POOLED_LAMBDAS: readonly number[] = Object.freeze([1e-4, 1e-3, 1e-2, 0.1, 1, 10]);

/** Model rows' input and output widths: per channel when channels are independent. */
function widths(m: FederationModel): { inputs: number; outputs: number; channels: number } {
  const channels = m.channelIndependent ? 1 : m.metrics.length;
  return { inputs: m.lookback * channels, outputs: m.horizon * channels, channels };
}

/**
 * Length of the model's flat weight vector (agent/trainer/model.ts buildModel; a test checks
 * the two agree), so the coordinator refuses an update of another layout before it sums it.
 */
export function modelParamCount(m: FederationModel): number {
  const { inputs: I, outputs: O, channels } = widths(m);
  const D = m.hiddenUnits;
  if (m.kind === 'linear') return I * O;
  if (m.kind === 'mlp') return I * O + I * D + D + D * O;
  // LSTM: kernel, recurrent kernel and bias of four gates, then the dense head (no bias).
  return channels * 4 * D + D * 4 * D + 4 * D + D * O;
}

/** Ridge heads: one per channel when channels are independent, else one. */
export function ridgeHeads(m: FederationModel): number {
  return m.channelIndependent ? m.metrics.length : 1;
}

/** Length of a ridge update (agent/trainer/ridge.ts packedLength over [inputs, random features]); 0 without ridge. */
export function ridgePayloadLength(m: FederationModel): number {
  if (m.ridgeFeatures === 0 || m.kind === 'lstm') return 0;
  const { inputs: I, outputs: O } = widths(m);
  const d = I + m.ridgeFeatures;
  return ridgeHeads(m) * ((d * (d + 1)) / 2 + d * O);
}
