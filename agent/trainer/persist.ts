import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { z } from 'zod';
import { IcosflError } from '../../common/errors.js';
import { MODEL_KINDS } from './config.js';
import type { ModelSpec } from './model.js';
import type { OutputCalibration } from './forecaster.js';
import type { Scaler } from './scaler.js';

/**
 * The saved model: one file, so that a rename publishes weights, scaler and version together.
 *   8 B magic "ICFLMDL1" · u32 LE header length · header JSON · float32 LE weights
 * The header carries the weights' SHA-256; any mismatch, truncation or bad field is
 * STATE_CORRUPT (the daemon then starts from a fresh model instead of crashing).
 */
export const MODEL_FILE = 'model.icosfl';
/** The one backup of a saved model whose layout the config no longer matches (trainer/job.ts). */
export const OTHER_LAYOUT_SUFFIX = '.other-layout';
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

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export { writeFileAtomic };

export function saveModel(stateDir: string, m: SavedModel): string {
  const weightBytes = new Uint8Array(m.weights.buffer, m.weights.byteOffset, m.weights.byteLength);
  const header = Buffer.from(
    JSON.stringify({
      format: 1,
      spec: m.spec,
      scaler: m.scaler,
      channelNames: m.channelNames,
      version: m.version,
      round: m.round,
      savedAt: m.savedAt,
      ...(m.calibration ? { calibration: m.calibration } : {}),
      weightCount: m.weights.length,
      sha256: sha256(weightBytes),
    }),
    'utf8',
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const path = join(stateDir, MODEL_FILE);
  writeFileAtomic(path, [MAGIC, len, header, weightBytes], { kind: 'model' });
  return path;
}

function corrupt(path: string, what: string, cause?: unknown): never {
  throw new IcosflError('STATE_CORRUPT', `model file ${path}: ${what}`, { cause, details: { path } });
}

/** undefined when no model was saved yet; STATE_CORRUPT when the file is damaged. */
export function loadModel(stateDir: string): SavedModel | undefined {
  const path = join(stateDir, MODEL_FILE);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC)) corrupt(path, 'not an icosfl model (bad magic)');
  const headerLen = buf.readUInt32LE(8);
  if (12 + headerLen > buf.length) corrupt(path, `truncated header (${headerLen} bytes announced, ${buf.length - 12} present)`);
  let header: z.infer<typeof headerSchema>;
  try {
    header = headerSchema.parse(JSON.parse(buf.subarray(12, 12 + headerLen).toString('utf8')));
  } catch (err) {
    corrupt(path, 'malformed header', err);
  }
  const { spec, scaler } = header;
  if (scaler.mean.length !== spec.channels || scaler.std.length !== spec.channels || header.channelNames.length !== spec.channels) {
    corrupt(path, `scaler or channel names do not have ${spec.channels} channels`);
  }
  const { calibration } = header;
  if (calibration && (calibration.blend.length !== spec.channels || calibration.changeLimit.length !== spec.channels)) {
    corrupt(path, `output calibration does not have ${spec.channels} channels`);
  }
  const body = buf.subarray(12 + headerLen);
  if (body.length !== header.weightCount * 4) corrupt(path, `weights are ${body.length} bytes, the header says ${header.weightCount * 4}`);
  if (sha256(body) !== header.sha256) corrupt(path, 'weights checksum mismatch');
  // Copy into an aligned buffer: the body's offset in the file need not be a multiple of 4.
  const weights = new Float32Array(header.weightCount);
  new Uint8Array(weights.buffer).set(body);
  return {
    spec, scaler, channelNames: header.channelNames, version: header.version, round: header.round, savedAt: header.savedAt, weights,
    ...(calibration ? { calibration } : {}),
  };
}
