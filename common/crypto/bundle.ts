import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { IcosflError } from '../errors.js';
import { inputError } from '../system-errors.js';
import {
  COEFF_MODULUS_BITS,
  DEFAULT_MAX_ABS_WEIGHT,
  DEFAULT_MAX_ROUND_SAMPLES,
  PARAMS_FORMAT,
  POLY_MODULUS_DEGREE,
  deriveParams,
  parseFederationParams,
  type FederationParams,
} from './params.js';
import { loadSeal } from './seal-loader.js';

/**
 * Key material and its two roles. `keys init` writes both files once per federation:
 *   agent.json        (0600) the parameters and the CKKS secret key, shared by the federation's agents
 *   coordinator.json  (0644) the parameters only: enough to validate and add ciphertexts, never to decrypt
 * Loaders validate everything (zod schema, key hash against keyId) and refuse the wrong role.
 */
export const AGENT_BUNDLE_FILE = 'agent.json';
export const COORDINATOR_BUNDLE_FILE = 'coordinator.json';
const AGENT_KIND = 'icosfl-agent-bundle';
const COORDINATOR_KIND = 'icosfl-coordinator-bundle';

export interface AgentBundle {
  params: FederationParams;
  secretKey: Uint8Array; // SEAL SecretKey serialisation, compression none
}
export interface CoordinatorBundle {
  params: FederationParams;
}

export interface FederationOptions {
  federationId?: string;
  maxAbsWeight?: number;
  maxRoundSamples?: number;
  /** Key epoch (0 for a new federation; `keys rotate` passes the previous one + 1). */
  epoch?: number;
}

export function keyId(secretKey: Uint8Array): string {
  return createHash('sha256').update(secretKey).digest().subarray(0, 16).toString('hex');
}

/** Creates a federation's parameters and secret key (in memory). */
export async function generateFederation(opts: FederationOptions = {}): Promise<{ agent: AgentBundle; coordinator: CoordinatorBundle }> {
  const seal = await loadSeal();
  const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
  const moduli = seal.CoeffModulus.Create(POLY_MODULUS_DEGREE, Int32Array.from([COEFF_MODULUS_BITS]));
  let context, keygen, secretKey;
  try {
    parms.setPolyModulusDegree(POLY_MODULUS_DEGREE);
    parms.setCoeffModulus(moduli);
    context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    keygen = seal.KeyGenerator(context);
    secretKey = keygen.secretKey();
    const skBytes = secretKey.saveArray(seal.ComprModeType.none);
    const params = parseFederationParams(
      {
        format: PARAMS_FORMAT,
        federationId: opts.federationId ?? randomUUID(),
        polyModulusDegree: POLY_MODULUS_DEGREE,
        coeffModulusBits: COEFF_MODULUS_BITS,
        coeffModulus: String(parms.coeffModulus[0]),
        maxAbsWeight: opts.maxAbsWeight ?? DEFAULT_MAX_ABS_WEIGHT,
        maxRoundSamples: opts.maxRoundSamples ?? DEFAULT_MAX_ROUND_SAMPLES,
        keyId: keyId(skBytes),
        epoch: opts.epoch ?? 0,
      },
      'new federation',
    );
    deriveParams(params); // throws now, not at first use, if W·S leaves no room for a scale
    return { agent: { params, secretKey: skBytes }, coordinator: { params } };
  } finally {
    secretKey?.delete();
    keygen?.delete();
    context?.delete();
    moduli.delete();
    parms.delete();
  }
}

/**
 * The next key epoch of a federation (`keys rotate`): same federation id and parameters, a new
 * secret key, epoch + 1. Takes only parameters, so the coordinator's host can rotate without
 * ever holding the current secret key.
 */
export function rotateFederation(current: FederationParams): Promise<{ agent: AgentBundle; coordinator: CoordinatorBundle }> {
  return generateFederation({ federationId: current.federationId, maxAbsWeight: current.maxAbsWeight, maxRoundSamples: current.maxRoundSamples, epoch: current.epoch + 1 });
}

/** Writes agent.json (0600) and coordinator.json (0644) into dir (created 0700 if absent). */
export function writeFederation(dir: string, fed: { agent: AgentBundle; coordinator: CoordinatorBundle }): { agentPath: string; coordinatorPath: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const agentPath = join(dir, AGENT_BUNDLE_FILE);
  const coordinatorPath = join(dir, COORDINATOR_BUNDLE_FILE);
  const agentJson = { kind: AGENT_KIND, params: fed.agent.params, secretKey: Buffer.from(fed.agent.secretKey).toString('base64') };
  // Exclusive: never overwrite an existing federation's key by accident. Atomic: a full disk
  // leaves no half-written key (STATE_WRITE_FAILED), and the pair is written or neither is.
  writeFileAtomic(agentPath, [Buffer.from(JSON.stringify(agentJson) + '\n')], { kind: 'keys', mode: 0o600, exclusive: true });
  try {
    writeFileAtomic(coordinatorPath, [Buffer.from(JSON.stringify({ kind: COORDINATOR_KIND, params: fed.coordinator.params }, null, 2) + '\n')], { kind: 'keys', mode: 0o644, exclusive: true });
  } catch (err) {
    rmSync(agentPath, { force: true });
    throw err;
  }
  return { agentPath, coordinatorPath };
}

function readJson(path: string, code: 'CRYPTO_KEY_INVALID'): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw inputError(code, path, cause, 'key bundle', 'name the agent.json or coordinator.json that `keys init` wrote');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new IcosflError(code, `${path}: not a key bundle (not JSON: truncated or another file); name the agent.json or coordinator.json that \`keys init\` wrote`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new IcosflError(code, `${path}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** Validates an agent bundle object (as read from agent.json). */
export function parseAgentBundle(value: Record<string, unknown>, source: string): AgentBundle {
  if (value.kind !== AGENT_KIND) throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: not an agent bundle (kind ${JSON.stringify(value.kind)})`);
  const params = parseFederationParams(value.params, source);
  if (typeof value.secretKey !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(value.secretKey)) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: secretKey is missing or not base64`);
  }
  const secretKey = new Uint8Array(Buffer.from(value.secretKey, 'base64'));
  if (keyId(secretKey) !== params.keyId) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: the secret key does not match the bundle's keyId (corrupt or from another federation)`);
  }
  return { params, secretKey };
}

/** Loads agent.json; refuses a key file that group or others can read. */
export function loadAgentBundle(path: string): AgentBundle {
  // Read first: a coordinator bundle (0644 by design) is the wrong role, not a loose secret key.
  const value = readJson(path, 'CRYPTO_KEY_INVALID');
  if (value.kind === COORDINATOR_KIND) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${path}: this is a coordinator bundle (${COORDINATOR_BUNDLE_FILE}, parameters only), the wrong role for an agent; give the agent ${AGENT_BUNDLE_FILE} from the same \`keys init\``);
  }
  const mode = statSync(path).mode;
  if ((mode & 0o077) !== 0) {
    throw new IcosflError('CRYPTO_KEY_INVALID', `${path}: the secret key is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return parseAgentBundle(value, path);
}

/** Validates a coordinator bundle object; anything carrying a secret key is refused. */
export function parseCoordinatorBundle(value: Record<string, unknown>, source: string): CoordinatorBundle {
  if ('secretKey' in value || value.kind === AGENT_KIND) {
    throw new IcosflError('CRYPTO_SECRET_KEY_FORBIDDEN', `${source}: this bundle contains the federation's secret key; the coordinator must be given ${COORDINATOR_BUNDLE_FILE}, not ${AGENT_BUNDLE_FILE}`);
  }
  if (value.kind !== COORDINATOR_KIND) throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: not a coordinator bundle (kind ${JSON.stringify(value.kind)})`);
  const extra = Object.keys(value).filter((k) => k !== 'kind' && k !== 'params');
  if (extra.length > 0) throw new IcosflError('CRYPTO_KEY_INVALID', `${source}: unexpected field ${extra[0]}`);
  return { params: parseFederationParams(value.params, source) };
}

export function loadCoordinatorBundle(path: string): CoordinatorBundle {
  return parseCoordinatorBundle(readJson(path, 'CRYPTO_KEY_INVALID'), path);
}
