import { stringify } from 'smol-toml';
import { defineCommand } from '../../common/cli.js';
import { referenceText } from '../../common/config/reference.js';
import { CONFIG_FLAGS, loadOptionsOf } from '../config/flags.js';
import { loadFederationKeys, resolveFederation } from '../config/federation.js';
import { configPathOf, loadCoordinatorConfig } from '../config/load.js';
import { coordinatorConfigReference } from '../config/reference.js';
import { loadBrokerSecurity } from '../service-broker.js';

/**
 * Validates what `serve` would start with: the config layers, the key bundle (its role and
 * federation id, without loading SEAL) and prints the effective configuration as TOML, with
 * federation.id resolved. Config errors exit 78 naming the key; key errors 77.
 */
const command = defineCommand({
  summary: 'validate the config file, environment and flags and the key bundle; print the effective config (exit 78 naming the key if invalid)',
  flags: { ...CONFIG_FLAGS, quiet: { type: 'boolean', description: 'print only the first two lines (config OK, the federation), not the effective config' } },
  notes: () =>
    `Configuration keys (also in docs/CONFIG.md; an example with every key: coordinator.example.toml beside the package's\n` +
    `config code, installed as /etc/icosfl/coordinator.example.toml). Layers, strongest last: defaults < file < environment < flags.\n\n` +
    referenceText(coordinatorConfigReference()),
  async run({ values }) {
    const load = loadOptionsOf(values);
    const config = loadCoordinatorConfig(load);
    const federation = resolveFederation(config, await loadFederationKeys(config));
    loadBrokerSecurity(config); // the TLS files serve would read (exit 78 naming key and file)
    const { source, origins: _origins, federationModel: _model, ...shown } = config;
    void _origins;
    void _model;
    const from = source ?? `defaults (no file at ${configPathOf(load).path})`;
    process.stdout.write(`config OK: ${from}\n`);
    process.stdout.write(`federation ${federation.id}, codec ${config.coordinator.codec}${federation.keyId ? `, key ${federation.keyId}` : ''}\n`);
    if (!values.quiet) {
      const effective = { ...shown, federation: { ...shown.federation, id: federation.id } };
      process.stdout.write(`\n# effective configuration (file < ICOSFL_COORD_* environment < flags)\n${stringify(effective)}\n`);
    }
    return 0;
  },
});
export default command;
