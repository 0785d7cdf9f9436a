import type { CommandTable } from '../../common/cli.js';

/**
 * `icosfl-simulate <command>`: the code that drives both sides of a federation, agents and
 * coordinator, in one place (the only folder that imports agent/ and coordinator/ together).
 * One file per command, loaded only when invoked (cli.ts runs this table; tests list it).
 */
export const COMMANDS: CommandTable = {
  federation: () => import('./federation.js'),
  run: () => import('./run.js'),
  convert: () => import('./convert.js'),
};
