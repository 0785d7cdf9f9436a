import type { ConfigLayer } from './toml-file.js';

/**
 * Merges config layers section by section, later layers winning key by key (defaults < file <
 * environment < flags). A scalar where a section belongs is kept as is, so the schema reports it
 * as a wrong type rather than this function dropping it.
 */
export function mergeLayers(...layers: ConfigLayer[]): ConfigLayer {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      const before = out[section];
      if (values === null || typeof values !== 'object' || Array.isArray(values)) out[section] = values;
      else out[section] = { ...(before !== null && typeof before === 'object' && !Array.isArray(before) ? before : {}), ...values };
    }
  }
  return out as ConfigLayer;
}
