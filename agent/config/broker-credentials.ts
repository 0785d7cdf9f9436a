import { IcosflError } from '../../common/errors.js';
import { loadBrokerCredentials, type BrokerCredentials } from '../../common/transport/tls-credentials.js';
import type { FederationSettings } from '../federation/job.js';

/**
 * The `[federation]` TLS files, read and checked (TLS_MATERIAL_INVALID, exit 78, naming key and
 * file), as the federation job and `check-config` use them. The certificate must be this agent's:
 * a broker with the federation ACL knows the agent by its CN and would grant it no topic.
 */
export function agentBrokerCredentials(settings: FederationSettings, agent: string, configSource: string | null | undefined): BrokerCredentials {
  const where = configSource ?? 'defaults or overrides';
  const credentials = loadBrokerCredentials(settings, (k) => `federation.${k} (${where})`);
  if (credentials.identity !== undefined && credentials.username === undefined && credentials.identity !== agent) {
    throw new IcosflError(
      'TLS_MATERIAL_INVALID',
      `federation.cert (${where}): certificate ${settings.cert} is for '${credentials.identity}', not this agent '${agent}': use agents/${agent}.crt from scripts/gen-certs.sh, or set federation.agent_id = "${credentials.identity}"`,
    );
  }
  return credentials;
}
