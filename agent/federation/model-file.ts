import { createHash } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { IcosflError } from '../../common/errors.js';
import { federationModelSchema, modelConfigHash } from '../../common/protocol/federation-model.js';
import type { FederatedModel } from './federated-model.js';

/**
 * The agent's federated model on disk, so a restarted daemon forecasts with it at once:
 *   8 B magic "ICFLFED1" · u32 LE header length · header JSON · float32 LE weights (fedavg,
 *   fineTuned, local, each `weights` long) · float64 LE ridge coefficients (head after head)
 * The header carries the body's SHA-256; a damaged or foreign file is STATE_CORRUPT (the job
 * moves it aside and waits for the next session).
 */
export const FEDERATED_MODEL_FILE = 'federated.icosfl';
const MAGIC = Buffer.from('ICFLFED1', 'ascii');

const calibration = z.object({ blend: z.array(z.number().min(0).max(1)), changeLimit: z.array(z.number().nonnegative()) }).strict();
const headerSchema = z
  .object({
    format: z.literal(1),
    session: z.number().int().positive(),
    round: z.number().int().positive(),
    bestRound: z.number().int().nonnegative(),
    model: federationModelSchema,
    configHash: z.string(),
    scaler: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }).strict(),
    calibrations: z.object({ fedavg: calibration.nullable(), fineTuned: calibration.nullable(), local: calibration.nullable() }).strict(),
    weights: z.number().int().positive(),
    ridge: z.object({ heads: z.number().int().positive(), coefficients: z.number().int().positive(), lambdas: z.array(z.number().positive()), calibrations: z.array(calibration.nullable()) }).strict().nullable(),
    createdAt: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

const bytesOf = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The one backup of a saved federated model of another model configuration, replaced by the next. */
export const OTHER_LAYOUT_SUFFIX = '.other-layout';

/** The configHash in a saved file's header, or undefined if there is none or it cannot be read. */
function savedConfigHash(path: string): string | undefined {
  try {
    const buf = readFileSync(path);
    if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC)) return undefined;
    const h = JSON.parse(buf.subarray(12, 12 + buf.readUInt32LE(8)).toString('utf8')) as { configHash?: unknown };
    return typeof h.configHash === 'string' ? h.configHash : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Saves atomically (STATE_WRITE_FAILED on a full disk, the previous file intact). A saved model of
 * another model configuration (a new federation model: other metrics, layout) is not overwritten
 * but kept as `federated.icosfl.other-layout`, one backup replacing the previous.
 */
export function saveFederatedModel(stateDir: string, fm: FederatedModel): string {
  const existing = join(stateDir, FEDERATED_MODEL_FILE);
  const previous = savedConfigHash(existing);
  if (previous !== undefined && previous !== fm.configHash) renameSync(existing, `${existing}${OTHER_LAYOUT_SUFFIX}`);
  const parts: Uint8Array[] = [bytesOf(fm.fedavg.weights), bytesOf(fm.fineTuned.weights), bytesOf(fm.local.weights), ...(fm.ridge?.betas.map(bytesOf) ?? [])];
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  const header = Buffer.from(
    JSON.stringify({
      format: 1,
      session: fm.session,
      round: fm.round,
      bestRound: fm.bestRound,
      model: fm.model,
      configHash: fm.configHash,
      scaler: fm.scaler,
      calibrations: { fedavg: fm.fedavg.calibration ?? null, fineTuned: fm.fineTuned.calibration ?? null, local: fm.local.calibration ?? null },
      weights: fm.fedavg.weights.length,
      ridge: fm.ridge ? { heads: fm.ridge.betas.length, coefficients: fm.ridge.betas[0]!.length, lambdas: fm.ridge.lambdas, calibrations: fm.ridge.calibrations.map((c) => c ?? null) } : null,
      createdAt: fm.createdAt,
      sha256: hash.digest('hex'),
    }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const path = join(stateDir, FEDERATED_MODEL_FILE);
  writeFileAtomic(path, [MAGIC, len, header, ...parts], { kind: 'federated-model' });
  return path;
}

function corrupt(path: string, what: string, cause?: unknown): never {
  throw new IcosflError('STATE_CORRUPT', `federated model ${path}: ${what}`, { cause, details: { path } });
}

/** undefined when none was saved; STATE_CORRUPT when the file is damaged. */
export function loadFederatedModel(stateDir: string): FederatedModel | undefined {
  const path = join(stateDir, FEDERATED_MODEL_FILE);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC)) corrupt(path, 'not an icosfl federated model (bad magic)');
  const headerLength = buf.readUInt32LE(8);
  if (12 + headerLength > buf.length) corrupt(path, 'truncated header');
  let h: z.infer<typeof headerSchema>;
  try {
    h = headerSchema.parse(JSON.parse(buf.subarray(12, 12 + headerLength).toString('utf8')));
  } catch (err) {
    corrupt(path, 'malformed header', err);
  }
  if (modelConfigHash(h.model) !== h.configHash) corrupt(path, 'the model configuration does not match its hash');
  const C = h.model.metrics.length;
  if (h.scaler.mean.length !== C || h.scaler.std.length !== C) corrupt(path, `scaler does not have ${C} channels`);
  const body = buf.subarray(12 + headerLength);
  const ridgeBytes = h.ridge ? h.ridge.heads * h.ridge.coefficients * 8 : 0;
  if (body.length !== 3 * h.weights * 4 + ridgeBytes) corrupt(path, `body is ${body.length} bytes, the header announces ${3 * h.weights * 4 + ridgeBytes}`);
  if (createHash('sha256').update(body).digest('hex') !== h.sha256) corrupt(path, 'checksum mismatch');
  const aligned = new Uint8Array(body.length);
  aligned.set(body);
  const floats = (i: number) => new Float32Array(aligned.buffer, i * h.weights * 4, h.weights);
  const piece = (i: number, c: z.infer<typeof calibration> | null) => ({ weights: floats(i).slice(), calibration: c ?? undefined });
  const ridge = h.ridge
    ? {
        betas: Array.from({ length: h.ridge.heads }, (_, k) => new Float64Array(aligned.buffer.slice(3 * h.weights * 4 + k * h.ridge!.coefficients * 8, 3 * h.weights * 4 + (k + 1) * h.ridge!.coefficients * 8))),
        calibrations: h.ridge.calibrations.map((c) => c ?? undefined),
        lambdas: h.ridge.lambdas,
      }
    : undefined;
  return {
    session: h.session,
    round: h.round,
    bestRound: h.bestRound,
    model: h.model,
    configHash: h.configHash,
    scaler: h.scaler,
    fedavg: piece(0, h.calibrations.fedavg),
    fineTuned: piece(1, h.calibrations.fineTuned),
    local: piece(2, h.calibrations.local),
    ridge,
    createdAt: h.createdAt,
  };
}

/** Moves a damaged model file aside (kept for inspection, one, replacing an earlier one); returns where it went. */
export function moveAside(stateDir: string): string {
  const aside = join(stateDir, `${FEDERATED_MODEL_FILE}.corrupt`);
  renameSync(join(stateDir, FEDERATED_MODEL_FILE), aside);
  return aside;
}
