import { z } from 'zod';
import { DEFAULT_FEDERATION_MODEL as D, MODEL_KINDS, type ModelKind } from '../../common/protocol/federation-model.js';

/**
 * The `[trainer]` section of the agent config. Keys are snake_case because they are written in
 * TOML by people; every key has a default, so an empty `[trainer]` (or none) is a working setup.
 *
 * Defaults, and why. The model's layout and learning settings are the federation's
 * (common/protocol/federation-model.ts DEFAULT_FEDERATION_MODEL, the one object simulate and the
 * coordinator use too; docs/decisions.md D1 has the measurement that chose lookback 12 and 32
 * hidden units over the 30 and 64 this trainer had before):
 * - model 'mlp' on the flattened lookback with a residual target (predict the change from the
 *   last value): few large matmuls per step (fast on WASM and the only shape a GPU runs well,
 *   see ../shared/DESIGN.md), and the residual target is what beats persistence. 'linear' is the
 *   autoregressive baseline; 'lstm' is ICOS-FL's choice, kept for comparison.
 * - lookback 12 / horizon 5, 32 hidden units, learning rate, seed, validation tail and the
 *   5,000-window cap: the federation's.
 * - batch 256 and 3 epochs are this local trainer's own: it trains every train_interval_s from
 *   its previous model, and bigger batches keep those rounds cheap (the federation's 32 is for
 *   the few hundred windows of a short trace); they do not change the layout.
 * With [federation] enabled the federation job trains instead, with what the coordinator announces.
 */
export const BACKEND_NAMES = ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export { MODEL_KINDS, type ModelKind };

export const trainerConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Run periodic local training in the daemon; it starts once the ring holds min_samples + lookback + horizon − 1 samples.'),
    backend: z.enum(['auto', ...BACKEND_NAMES]).default('auto').describe("'auto': the fastest backend that loads, measured by a short calibration (`icosfl-agent backends`); or force one."),
    model: z.enum(MODEL_KINDS).default(D.kind).describe("'mlp' on the flattened lookback with a residual target; 'linear' is the autoregressive baseline; 'lstm' is kept for comparison."),
    // Measured on GCD cpu+mem: independent channels beat joint ones for federated and centralised
    // training (joint: memory was no better than persistence, cpu's movements leaked into memory forecasts).
    channel_independent: z.boolean().default(D.channelIndependent).describe('true: one model shared by every channel, each forecast from its own history; false: one model over all channels jointly.'),
    lookback: z.number().int().min(2).max(1024).default(D.lookback).describe('Past samples the model sees.'),
    horizon: z.number().int().min(1).max(256).default(D.horizon).describe('Future samples it predicts (steps ahead).'),
    hidden_units: z.number().int().min(1).max(4096).default(D.hiddenUnits).describe("Hidden units of the MLP layer or LSTM cell (unused by 'linear')."),
    epochs: z.number().int().min(1).max(1000).default(3).describe('Passes over the local windows per training round.'),
    // At most 65,535: WebGPU dispatches one workgroup per batch row, and that is its per-dimension limit.
    batch_size: z.number().int().min(1).max(65535).default(256).describe('Windows per training step.'),
    learning_rate: z.number().positive().max(1).default(D.learningRate).describe("Adam's learning rate."),
    train_interval_s: z.number().positive().default(600).describe('Seconds between local training rounds.'),
    forecast_interval_s: z.number().positive().default(60).describe('Seconds between refreshes of the forecast gauges (a forward pass on the newest window).'),
    min_samples: z.number().int().min(1).default(200).describe('Windows needed before the first round; below this the job waits.'),
    max_windows: z.number().int().min(1).default(D.maxWindows).describe('Only the newest windows train in a round, which bounds its time and memory.'),
    validation_fraction: z.number().min(0.05).max(0.5).default(D.validationFraction).describe('Chronological validation tail (no shuffling across it, scaler fitted before it).'),
    seed: z.number().int().min(0).default(D.seed).describe('Seed for weight init and batch shuffling: runs are reproducible on one backend.'),
    calibration_batches: z.number().int().min(1).max(100).default(5).describe("Batches timed per backend when backend = 'auto'."),
  })
  .strict();

export type TrainerConfig = z.infer<typeof trainerConfigSchema>;

/** Defaults merged once; `parseTrainerConfig({})` gives the shipped configuration. */
export function parseTrainerConfig(input: unknown): TrainerConfig {
  return trainerConfigSchema.parse(input ?? {});
}
