import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

/** The federation's TLS material as scripts/gen-certs.sh makes it (real openssl, real files). */
export interface FederationCerts {
  dir: string;
  ca: string;
  broker: { cert: string; key: string };
  coordinator: { cert: string; key: string };
  agent(id: string): { cert: string; key: string };
}

export const GEN_CERTS = join(REPO_ROOT, 'scripts', 'gen-certs.sh');
export const MOSQUITTO_CONF = join(REPO_ROOT, 'deploy', 'mosquitto', 'icosfl.conf');
export const MOSQUITTO_ACL = join(REPO_ROOT, 'deploy', 'mosquitto', 'acl');

/** Runs gen-certs.sh into `dir` (extra args such as --host); returns its output. */
export function genCerts(dir: string, args: string[]): string {
  return execFileSync('bash', [GEN_CERTS, '--out', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

export function makeCerts(dir: string, agents: string[], extra: string[] = []): FederationCerts {
  genCerts(dir, [...extra, ...agents]);
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    broker: { cert: join(dir, 'broker.crt'), key: join(dir, 'broker.key') },
    coordinator: { cert: join(dir, 'coordinator.crt'), key: join(dir, 'coordinator.key') },
    agent: (id) => ({ cert: join(dir, 'agents', `${id}.crt`), key: join(dir, 'agents', `${id}.key`) }),
  };
}

/**
 * deploy/mosquitto/icosfl.conf as shipped, with only what a test must change: the listener on
 * `port` at 127.0.0.1, the certificate paths in `certsDir`, the ACL from deploy/.
 */
export function shippedMosquittoConfig(port: number, certsDir: string): string[] {
  const lines = readFileSync(MOSQUITTO_CONF, 'utf8').split('\n');
  const out = lines.map((l) => {
    if (l === 'listener 8883') return `listener ${port} 127.0.0.1`;
    if (l.startsWith('acl_file ')) return `acl_file ${MOSQUITTO_ACL}`;
    return l.replaceAll('/etc/mosquitto/icosfl/', `${certsDir}/`);
  });
  if (!out.includes(`listener ${port} 127.0.0.1`)) throw new Error(`${MOSQUITTO_CONF} has no 'listener 8883' line to move to port ${port}`);
  return out;
}
