import { join } from 'node:path';
import { z } from 'zod';
import { keepOtherLayout, moveCorruptAside, peekHeaderField, readContainer, stateCorrupt, writeContainer, type ContainerFormat } from '../../common/state-container.js';
import { federationModelSchema, modelConfigHash } from '../../common/protocol/federation-model.js';
import type { FederatedModel } from './federated-model.js';

/**
 * The agent's federated model on disk, so a restarted daemon forecasts with it at once: a state
 * container (common/state-container.ts) with magic "ICFLFED1" whose body is float32 LE weights
 * (fedavg, fineTuned, local, each `weights` long) · float64 LE ridge coefficients (head after
 * head). A damaged or foreign file is STATE_CORRUPT (the job moves it aside and waits for the
 * next session).
 */
export const FEDERATED_MODEL_FILE = 'federated.icosfl';
export { OTHER_LAYOUT_SUFFIX } from '../../common/state-container.js';
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
const FORMAT: ContainerFormat<z.infer<typeof headerSchema>> = { magic: MAGIC, what: 'federated model', header: headerSchema, bodyBytes: (h) => 3 * h.weights * 4 + (h.ridge ? h.ridge.heads * h.ridge.coefficients * 8 : 0) };

/**
 * Saves atomically (STATE_WRITE_FAILED on a full disk, the previous file intact). A saved model of
 * another model configuration (a new federation model: other metrics, layout) is not overwritten
 * but kept as `federated.icosfl.other-layout`, one backup replacing the previous.
 */
export function saveFederatedModel(stateDir: string, fm: FederatedModel): string {
  const path = join(stateDir, FEDERATED_MODEL_FILE);
  const previous = peekHeaderField(path, MAGIC, 'configHash');
  if (typeof previous === 'string' && previous !== fm.configHash) keepOtherLayout(path);
  const parts: Uint8Array[] = [bytesOf(fm.fedavg.weights), bytesOf(fm.fineTuned.weights), bytesOf(fm.local.weights), ...(fm.ridge?.betas.map(bytesOf) ?? [])];
  const header = {
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
  };
  writeContainer(path, MAGIC, header, parts, { kind: 'federated-model' });
  return path;
}

/** undefined when none was saved; STATE_CORRUPT when the file is damaged. */
export function loadFederatedModel(stateDir: string): FederatedModel | undefined {
  const path = join(stateDir, FEDERATED_MODEL_FILE);
  const read = readContainer(path, FORMAT);
  if (!read) return undefined;
  const { header: h, body } = read;
  const corrupt = (problem: string): never => stateCorrupt(FORMAT.what, path, problem);
  if (modelConfigHash(h.model) !== h.configHash) corrupt('the model configuration does not match its hash');
  const C = h.model.metrics.length;
  if (h.scaler.mean.length !== C || h.scaler.std.length !== C) corrupt(`scaler does not have ${C} channels`);
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
  return moveCorruptAside(join(stateDir, FEDERATED_MODEL_FILE));
}
