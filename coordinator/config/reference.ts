import { configReference, type ReferenceSection } from '../../common/config/reference.js';
import { ENV_PREFIX } from './load.js';
import { coordinatorConfigSchema } from './schema.js';

/** The coordinator's keys as `check-config --help` and docs/CONFIG.md list them (from the schema alone). */
export function coordinatorConfigReference(): ReferenceSection[] {
  return configReference(coordinatorConfigSchema, (section, key) => `${ENV_PREFIX}${section}_${key}`.toUpperCase());
}
