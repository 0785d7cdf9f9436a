import { join } from 'node:path';
import { z } from 'zod';
import { readContainer, stateCorrupt, writeContainer, type ContainerFormat } from '../../common/state-container.js';
import { MODEL_KINDS } from './config.js';
import type { ModelSpec } from './model.js';
import type { OutputCalibration } from './forecaster.js';
import type { Scaler } from './scaler.js';

/**
 * The saved model: a state container (common/state-container.ts) with magic "ICFLMDL1" and a
 * float32 LE weights body; any mismatch, truncation or bad field is STATE_CORRUPT (the daemon
 * then starts from a fresh model instead of crashing).
 */
export const MODEL_FILE = 'model.icosfl';
export { OTHER_LAYOUT_SUFFIX } from '../../common/state-container.js';
const MAGIC = Buffer.from('ICFLMDL1', 'ascii');

export interface SavedModel {
  spec: ModelSpec;
  scaler: Scaler;
  channelNames: string[];
  /** Increments on every save (local training or a new global model). */
  version: number;
  /** Last federated round whose global model this includes; 0 = local training only. */
  round: number;
  savedAt: string;
  weights: Float32Array;
  /** The machine's output calibration (Forecaster.calibrateOutput); absent in files from before it existed. */
  calibration?: OutputCalibration;
}

const headerSchema = z
  .object({
    format: z.literal(1),
    spec: z.object({
      kind: z.enum(MODEL_KINDS),
      lookback: z.number().int().positive(),
      horizon: z.number().int().positive(),
      channels: z.number().int().positive(),
      hiddenUnits: z.number().int().positive(),
      channelIndependent: z.boolean().optional(),
    }),
    scaler: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }),
    channelNames: z.array(z.string()),
    version: z.number().int().nonnegative(),
    round: z.number().int().nonnegative(),
    savedAt: z.string(),
    calibration: z
      .object({ blend: z.array(z.number().min(0).max(1)), changeLimit: z.array(z.number().nonnegative()) })
      .strict()
      .optional(),
    weightCount: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

const FORMAT: ContainerFormat<z.infer<typeof headerSchema>> = { magic: MAGIC, what: 'model file', header: headerSchema, bodyBytes: (h) => h.weightCount * 4 };

export function saveModel(stateDir: string, m: SavedModel): string {
  const weightBytes = new Uint8Array(m.weights.buffer, m.weights.byteOffset, m.weights.byteLength);
  const header = {
    format: 1,
    spec: m.spec,
    scaler: m.scaler,
    channelNames: m.channelNames,
    version: m.version,
    round: m.round,
    savedAt: m.savedAt,
    ...(m.calibration ? { calibration: m.calibration } : {}),
    weightCount: m.weights.length,
  };
  const path = join(stateDir, MODEL_FILE);
  writeContainer(path, MAGIC, header, [weightBytes], { kind: 'model' });
  return path;
}

/** undefined when no model was saved yet; STATE_CORRUPT when the file is damaged. */
export function loadModel(stateDir: string): SavedModel | undefined {
  const path = join(stateDir, MODEL_FILE);
  const read = readContainer(path, FORMAT);
  if (!read) return undefined;
  const { header, body } = read;
  const corrupt = (problem: string): never => stateCorrupt(FORMAT.what, path, problem);
  const { spec, scaler } = header;
  if (scaler.mean.length !== spec.channels || scaler.std.length !== spec.channels || header.channelNames.length !== spec.channels) {
    corrupt(`scaler or channel names do not have ${spec.channels} channels`);
  }
  const { calibration } = header;
  if (calibration && (calibration.blend.length !== spec.channels || calibration.changeLimit.length !== spec.channels)) {
    corrupt(`output calibration does not have ${spec.channels} channels`);
  }
  // Copy into an aligned buffer: the body's offset in the file need not be a multiple of 4.
  const weights = new Float32Array(header.weightCount);
  new Uint8Array(weights.buffer).set(body);
  return {
    spec, scaler, channelNames: header.channelNames, version: header.version, round: header.round, savedAt: header.savedAt, weights,
    ...(calibration ? { calibration } : {}),
  };
}
