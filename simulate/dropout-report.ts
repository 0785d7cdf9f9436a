import { deriveParams, type FederationParams } from '../common/crypto/params.js';
import { frameBytes } from '../common/crypto/wire.js';
import { dropoutLayout, keptCount } from '../common/protocol/dropout.js';
import { modelParamCount, type FederationModel } from '../common/protocol/federation-model.js';
import type { RoundSummary } from '../coordinator/round/state.js';

/**
 * What federated dropout changes in bytes, from two runs' round summaries. Every agent still
 * packs the whole layout (dropped units as zeros), so the update is the same size: a CKKS sum
 * adds slot i of every agent's ciphertexts, which only means something when slot i is the same
 * parameter for every agent. `kept_only_bytes` is what an update of the kept units alone would
 * take (an agent-specific layout the coordinator could not add). Pure.
 */
export function dropoutBytes(model: FederationModel, plain: readonly RoundSummary[], dropout: readonly RoundSummary[], params: FederationParams | undefined) {
  const layout = dropoutLayout(model);
  if (!layout) throw new RangeError('dropoutBytes: federated dropout needs the mlp model');
  const perUpdate = (rs: readonly RoundSummary[]) => {
    const fedavg = rs.filter((r) => r.phase === 'fedavg' && r.participants > 0);
    const bytes = fedavg.reduce((a, r) => a + r.bytesIn, 0);
    const updates = fedavg.reduce((a, r) => a + r.participants, 0);
    return updates > 0 ? Math.round(bytes / updates) : 0;
  };
  const parameters = modelParamCount(model);
  const kept = keptCount(model.dropoutRate, layout.units);
  const perUnit = layout.inputs + 1 + layout.outputs;
  const zeroed = (layout.units - kept) * perUnit;
  const keptParams = parameters - zeroed;
  // Plaintext bodies are float32; a CKKS frame holds ceil(params / slots) ciphertexts.
  const sizeOf = (n: number) => (params ? frameBytes(deriveParams(params), Math.ceil(n / deriveParams(params).slots), 1) : n * 4);
  return {
    parameters,
    kept_units: kept,
    zeroed_fraction: zeroed / parameters,
    update_bytes: perUpdate(plain),
    update_bytes_dropout: perUpdate(dropout),
    kept_only_bytes: sizeOf(keptParams),
    full_layout_bytes: sizeOf(parameters),
  };
}
