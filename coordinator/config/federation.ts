import { IcosflError, isIcosflError } from '../../common/errors.js';
import type { CoordinatorBundle } from '../../common/crypto/bundle.js';
import { originOf } from '../../common/config/problems.js';
import type { CoordinatorConfig } from './schema.js';

/**
 * Which federation this coordinator runs, and with which key: the key bundle (coordinator.json,
 * parameters only) is the authority; `federation.id`, when set, must name the same federation,
 * so a config copied from another federation cannot pair with this one's keys. Plaintext runs
 * (benchmarks) have no bundle: their id is the config's, their key id empty, and Σ n_k is
 * bounded only by the protocol's 2^31.
 */
export interface FederationIdentity {
  id: string;
  /** CKKS keyId of the bundle, announced so agents holding another key say so; '' for plaintext. */
  keyId: string;
  maxRoundSamples: number;
}

export const PLAINTEXT_MAX_ROUND_SAMPLES = 2 ** 31;

/** Loads coordinator.keys (unless plaintext); key errors keep their code (exit 77) and name the config key. */
export async function loadFederationKeys(config: CoordinatorConfig): Promise<CoordinatorBundle | null> {
  if (config.coordinator.codec === 'plaintext') return null;
  const { loadCoordinatorBundle } = await import('../../common/crypto/bundle.js');
  const path = config.coordinator.keys;
  try {
    return loadCoordinatorBundle(path);
  } catch (err) {
    if (!isIcosflError(err)) throw err;
    const from = originOf('coordinator.keys', config.origins, config.source);
    const hint = err.code === 'CRYPTO_KEY_INVALID' ? '; create a federation with `icosfl-coordinator keys init --out DIR` and point coordinator.keys at DIR/coordinator.json' : '';
    throw new IcosflError(err.code, `coordinator.keys (${from}): ${err.message}${hint}`, { cause: err });
  }
}

export function resolveFederation(config: CoordinatorConfig, bundle: CoordinatorBundle | null): FederationIdentity {
  const configured = config.federation.id;
  if (!bundle) return { id: configured, keyId: '', maxRoundSamples: PLAINTEXT_MAX_ROUND_SAMPLES };
  const p = bundle.params;
  if (configured !== '' && configured !== p.federationId) {
    const from = originOf('federation.id', config.origins, config.source);
    throw new IcosflError(
      'CONFIG_INVALID',
      `invalid configuration: federation.id (${from}): '${configured}' is not the federation of coordinator.keys ${config.coordinator.keys} ('${p.federationId}'); set federation.id = "${p.federationId}" or leave it empty`,
      { details: { problems: [{ key: 'federation.id', source: from, message: `'${configured}' ≠ the key bundle's '${p.federationId}'` }] } },
    );
  }
  return { id: p.federationId, keyId: p.keyId, maxRoundSamples: p.maxRoundSamples };
}
