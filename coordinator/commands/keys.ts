import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../../common/cli.js';
import { IcosflError } from '../../common/errors.js';
import { outputError } from '../../common/system-errors.js';
import {
  AGENT_BUNDLE_FILE,
  COORDINATOR_BUNDLE_FILE,
  deriveParams,
  generateFederation,
  loadAgentBundle,
  loadCoordinatorBundle,
  securityBits,
  writeFederation,
} from '../../common/crypto/index.js';

const USAGE = `keys init --out DIR [--federation-id ID] [--max-abs-weight W] [--max-round-samples S]
       keys check --role agent|coordinator FILE`;

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
    `federation ${params.federationId}: CKKS N=${d.n}, q=${params.coeffModulus} (${d.qBits} bits), ` +
    `${securityBits(d.n, d.qBits)}-bit security, scale 2^${Math.log2(d.scale)}, |w| ≤ ${params.maxAbsWeight}, ` +
    `Σ n_k ≤ ${params.maxRoundSamples} per round\n`
  );
}

const command: Command = {
  summary: "create a federation's CKKS key bundles (init) or check a bundle for a role (check)",
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'init') {
      const { values, positionals } = parseArgs({
        args: rest,
        strict: true,
        allowPositionals: true,
        options: { out: { type: 'string' }, 'federation-id': { type: 'string' }, 'max-abs-weight': { type: 'string' }, 'max-round-samples': { type: 'string' } },
      });
      if (positionals.length > 0) throw new TypeError(`keys init takes no positional arguments, got '${positionals[0]}'`);
      if (!values.out) throw new TypeError('keys init: --out DIR is required');
      for (const f of [AGENT_BUNDLE_FILE, COORDINATOR_BUNDLE_FILE]) {
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
      let written: ReturnType<typeof writeFederation>;
      try {
        written = writeFederation(values.out, fed);
      } catch (cause) {
        throw outputError(values.out, cause, '--out');
      }
      const { agentPath, coordinatorPath } = written;
      process.stdout.write(describe(fed.coordinator.params));
      process.stdout.write(`agent bundle (secret key, copy to every agent, mode 0600): ${agentPath}\n`);
      process.stdout.write(`coordinator bundle (parameters only): ${coordinatorPath}\n`);
      return 0;
    }
    if (sub === 'check') {
      const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { role: { type: 'string' } } });
      const file = positionals[0];
      if (positionals.length !== 1 || !file) throw new TypeError('keys check needs exactly one FILE');
      if (values.role === 'agent') process.stdout.write(describe(loadAgentBundle(file).params));
      else if (values.role === 'coordinator') process.stdout.write(describe(loadCoordinatorBundle(file).params));
      else throw new RangeError(`--role must be agent or coordinator, got '${values.role ?? ''}'`);
      return 0;
    }
    throw new TypeError(`keys: unknown subcommand '${sub ?? ''}'; usage: ${USAGE}`);
  },
};
export default command;
