/**
 * icosfl's CKKS codec: the only module that touches SEAL (through seal-session.ts).
 *
 * Keys (once per federation; `icosfl-coordinator keys init --out DIR`):
 *   generateFederation(opts?) → Promise<{ agent: AgentBundle; coordinator: CoordinatorBundle }>
 *   writeFederation(dir, fed) → { agentPath, coordinatorPath }     agent.json 0600, coordinator.json 0644
 *   loadAgentBundle(path) → AgentBundle                             refuses group/other-readable files
 *   loadCoordinatorBundle(path) → CoordinatorBundle                 CRYPTO_SECRET_KEY_FORBIDDEN on a secret key
 *
 * Agent (holds the secret key):
 *   const cipher = await AgentCipher.create(agentBundle)
 *   cipher.encryptUpdate(weights: Float32Array, sampleCount: number) → Uint8Array     (n_k·w_k encrypted)
 *   cipher.decryptAggregate(bytes, { paramCount?, maxClients? }) → { weights (already ÷ Σn), totalSamples, clients }
 *   cipher.dispose()                                                                  frees SEAL memory
 *
 * Coordinator (parameters only, no SEAL, cannot decrypt):
 *   aggregate(coordinatorBundle, updates: Uint8Array[], { paramCount? }) → Uint8Array
 *   new UpdateAccumulator(coordinatorBundle, { paramCount? }).add(bytes) … .finish() → Uint8Array
 *
 * Errors (IcosflError codes): CRYPTO_VALUE_OUT_OF_RANGE (|w| > maxAbsWeight, n_k or Σ n_k over
 * maxRoundSamples), CRYPTO_MALFORMED_UPDATE (truncated, oversized, garbage), CRYPTO_PARAMS_MISMATCH
 * (another federation or key), CRYPTO_LAYOUT_MISMATCH (paramCount differs), CRYPTO_DUPLICATE_UPDATE,
 * CRYPTO_KEY_INVALID, CRYPTO_SECRET_KEY_FORBIDDEN. Parameters and their reasoning: params.ts; wire
 * format: wire.ts.
 */
export { AgentCipher, type DecryptedAggregate } from './agent-cipher.js';
export { UpdateAccumulator, aggregate } from './aggregate.js';
export {
  AGENT_BUNDLE_FILE,
  COORDINATOR_BUNDLE_FILE,
  generateFederation,
  loadAgentBundle,
  loadCoordinatorBundle,
  parseAgentBundle,
  parseCoordinatorBundle,
  rotateFederation,
  writeFederation,
  type AgentBundle,
  type CoordinatorBundle,
  type FederationOptions,
} from './bundle.js';
export { DEFAULT_MAX_ROUND_SAMPLES, deriveParams, securityBits, type DerivedParams, type FederationParams } from './params.js';
export { frameBytes, parseFrame, type FrameHeader } from './wire.js';
