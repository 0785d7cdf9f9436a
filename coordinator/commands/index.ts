import type { CommandTable } from '../../common/cli.js';

/** `icosfl-coordinator <command>`; one file per command, loaded only when invoked (cli.ts runs this table; tests list it). */
export const COMMANDS: CommandTable = {
  serve: () => import('./serve.js'),
  aggregate: () => import('./aggregate.js'),
  status: () => import('./status.js'),
  agents: () => import('./agents.js'),
  rounds: () => import('./rounds.js'),
  pause: () => import('./pause.js'),
  resume: () => import('./resume.js'),
  'check-config': () => import('./check-config.js'),
  keys: () => import('./keys.js'),
};
