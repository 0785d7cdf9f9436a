#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/** `icosfl-coordinator <command>`; one file per command under coordinator/commands/. */
const COMMANDS: CommandTable = {
  simulate: () => import('./commands/simulate.js'),
  convert: () => import('./commands/convert.js'),
  keys: () => import('./commands/keys.js'),
};

void runCli('icosfl-coordinator', COMMANDS);
