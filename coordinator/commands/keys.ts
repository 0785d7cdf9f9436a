import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand, type CommandGroup } from '../../common/cli.js';
import { IcosflError } from '../../common/errors.js';
import { outputError } from '../../common/system-errors.js';
import {
  AGENT_BUNDLE_FILE,
  COORDINATOR_BUNDLE_FILE,
  deriveParams,
  generateFederation,
  loadAgentBundle,
  loadCoordinatorBundle,
  rotateFederation,
  securityBits,
  writeFederation,
} from '../../common/crypto/index.js';
import { DEFAULT_MAX_ABS_WEIGHT, DEFAULT_MAX_ROUND_SAMPLES } from '../../common/crypto/params.js';
import { COORDINATOR_PUBLIC_KEY_FILE, COORDINATOR_SIGNING_KEY_FILE, writeSigningKeyPair } from '../../common/crypto/signing-keys.js';

function positiveNumber(flag: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) throw new RangeError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${raw}'`);
  return v;
}

/** Prints what a bundle holds (never the key) so operators can compare federations. */
function describe(params: ReturnType<typeof loadCoordinatorBundle>['params']): string {
  const d = deriveParams(params);
  return (
    `federation ${params.federationId} key epoch ${params.epoch} (key ${params.keyId}): CKKS N=${d.n}, q=${params.coeffModulus} (${d.qBits} bits), ` +
    `${securityBits(d.n, d.qBits)}-bit security, scale 2^${Math.log2(d.scale)}, |w| ≤ ${params.maxAbsWeight}, ` +
    `Σ n_k ≤ ${params.maxRoundSamples} per round\n`
  );
}

const init = defineCommand({
  summary: "create a federation's keys in DIR: agent.json (CKKS secret key, 0600), coordinator.json (parameters only) and the coordinator's message-signing key pair",
  flags: {
    out: { type: 'string', value: 'DIR', description: 'directory to write the bundles and the signing key pair to (never overwritten)', required: true },
    'federation-id': { type: 'string', value: 'ID', description: 'the federation id, 1–64 of [A-Za-z0-9._-]', defaultText: 'a random one' },
    'max-abs-weight': { type: 'string', value: 'W', description: 'largest |weight| the encoding must carry', default: String(DEFAULT_MAX_ABS_WEIGHT) },
    'max-round-samples': { type: 'string', value: 'S', description: 'largest Σ n_k (training samples of all agents) one round may sum', default: String(DEFAULT_MAX_ROUND_SAMPLES) },
  },
  async run({ values }) {
    for (const f of [AGENT_BUNDLE_FILE, COORDINATOR_BUNDLE_FILE, COORDINATOR_SIGNING_KEY_FILE, COORDINATOR_PUBLIC_KEY_FILE]) {
      if (existsSync(join(values.out, f))) throw new IcosflError('OUTPUT_UNWRITABLE', `--out: ${join(values.out, f)} already exists; keys init never overwrites a federation's keys: choose another --out DIR`);
    }
    // Before the keys are made: a directory that cannot be written fails now, naming --out.
    try {
      mkdirSync(values.out, { recursive: true, mode: 0o700 });
      accessSync(values.out, constants.W_OK);
    } catch (cause) {
      throw outputError(values.out, cause, '--out');
    }
    const fed = await generateFederation({
      federationId: values['federation-id'],
      maxAbsWeight: positiveNumber('max-abs-weight', values['max-abs-weight'], false),
      maxRoundSamples: positiveNumber('max-round-samples', values['max-round-samples'], true),
    });
    const signingKey = join(values.out, COORDINATOR_SIGNING_KEY_FILE);
    const publicKey = join(values.out, COORDINATOR_PUBLIC_KEY_FILE);
    let written: ReturnType<typeof writeFederation>;
    try {
      written = writeFederation(values.out, fed);
      writeSigningKeyPair(signingKey, publicKey);
    } catch (cause) {
      throw outputError(values.out, cause, '--out');
    }
    const { agentPath, coordinatorPath } = written;
    process.stdout.write(describe(fed.coordinator.params));
    process.stdout.write(`agent bundle (secret key, copy to every agent, mode 0600): ${agentPath}\n`);
    process.stdout.write(`coordinator bundle (parameters only): ${coordinatorPath}\n`);
    process.stdout.write(`coordinator signing key (coordinator.signing_key, stays on the coordinator, mode 0600): ${signingKey}\n`);
    process.stdout.write(`coordinator public key (federation.coordinator_key on every agent, which pins it): ${publicKey}\n`);
    return 0;
  },
});

/** The bundle a rotation starts from: DIR/coordinator.json, else DIR/agent.json, else FILE itself. */
function currentParams(from: string): ReturnType<typeof loadCoordinatorBundle>['params'] {
  const coordinator = join(from, COORDINATOR_BUNDLE_FILE);
  const agent = join(from, AGENT_BUNDLE_FILE);
  if (existsSync(coordinator)) return loadCoordinatorBundle(coordinator).params;
  if (existsSync(agent)) return loadAgentBundle(agent).params;
  if (existsSync(from) && statSync(from).isFile()) return loadCoordinatorBundle(from).params;
  throw new IcosflError('CRYPTO_KEY_INVALID', `--from: ${from} holds neither ${COORDINATOR_BUNDLE_FILE} nor ${AGENT_BUNDLE_FILE}; name the directory \`keys init\` or the last \`keys rotate\` wrote`);
}

const rotate = defineCommand({
  summary: "create the federation's next CKKS key epoch in DIR (same federation and parameters, a new secret key): agent.json (0600) for every agent's federation.next_keys, coordinator.json for the coordinator's coordinator.next_keys",
  flags: {
    from: { type: 'string', value: 'DIR', description: 'the current epoch: a directory holding coordinator.json (or agent.json), or a coordinator.json', required: true },
    out: { type: 'string', value: 'DIR', description: 'directory to write the next epoch\'s bundles to (never overwritten)', required: true },
  },
  async run({ values }) {
    const current = currentParams(values.from);
    for (const f of [AGENT_BUNDLE_FILE, COORDINATOR_BUNDLE_FILE]) {
      if (existsSync(join(values.out, f))) throw new IcosflError('OUTPUT_UNWRITABLE', `--out: ${join(values.out, f)} already exists; keys rotate never overwrites key material: choose another --out DIR`);
    }
    try {
      mkdirSync(values.out, { recursive: true, mode: 0o700 });
      accessSync(values.out, constants.W_OK);
    } catch (cause) {
      throw outputError(values.out, cause, '--out');
    }
    const next = await rotateFederation(current);
    let written: ReturnType<typeof writeFederation>;
    try {
      written = writeFederation(values.out, next);
    } catch (cause) {
      throw outputError(values.out, cause, '--out');
    }
    process.stdout.write(describe(next.coordinator.params));
    process.stdout.write(`replaces key epoch ${current.epoch} (key ${current.keyId})\n`);
    process.stdout.write(`agent bundle (secret key, mode 0600): ${written.agentPath}: install it on every agent as federation.next_keys; delete it here once copied\n`);
    process.stdout.write(`coordinator bundle: ${written.coordinatorPath}: install it as coordinator.next_keys; the service switches at the next session once federation.min_agents agents hold the key (SECURITY.md, "Rotating the CKKS key")\n`);
    return 0;
  },
});

const check = defineCommand({
  summary: 'check that FILE is a valid key bundle for a role and print its parameters (the coordinator refuses a secret key)',
  operands: 'FILE',
  flags: { role: { type: 'string', value: 'agent|coordinator', description: 'the role FILE is for', required: true } },
  async run({ values, positionals }) {
    const file = positionals[0];
    if (positionals.length !== 1 || !file) throw new TypeError('keys check needs exactly one FILE');
    if (values.role === 'agent') process.stdout.write(describe(loadAgentBundle(file).params));
    else if (values.role === 'coordinator') process.stdout.write(describe(loadCoordinatorBundle(file).params));
    else throw new RangeError(`--role must be agent or coordinator, got '${values.role}'`);
    return 0;
  },
});

const command: CommandGroup = {
  summary: "create a federation's CKKS key bundles (init), its next key epoch (rotate), or check a bundle for a role (check)",
  subcommands: { init, rotate, check },
};
export default command;
