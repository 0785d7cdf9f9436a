import type { CommandTable } from '../../common/cli.js';

/** `icosfl-agent <command>`; one file per command, loaded only when invoked (cli.ts runs this table; tests list it). */
export const COMMANDS: CommandTable = {
  sample: () => import('./sample.js'),
  run: () => import('./run.js'),
  status: () => import('./status.js'),
  'check-config': () => import('./check-config.js'),
  backends: () => import('./backends.js'),
  predict: () => import('./predict.js'),
  identity: () => import('./identity.js'),
};
