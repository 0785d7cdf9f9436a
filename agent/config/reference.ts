import { configReference, type ReferenceSection } from '../../common/config/reference.js';
import { agentConfigSchema } from './schema.js';

/** The agent's keys as `check-config --help` and docs/CONFIG.md list them (from the schema alone). */
export function agentConfigReference(): ReferenceSection[] {
  return configReference(agentConfigSchema, (section, key) => `ICOSFL_${section}_${key}`.toUpperCase());
}
