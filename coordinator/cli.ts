#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/** `icosfl-coordinator <command>`; one file per command under coordinator/commands/. */
const COMMANDS: CommandTable = {
  serve: () => import('./commands/serve.js'),
  status: () => import('./commands/status.js'),
  agents: () => import('./commands/agents.js'),
  rounds: () => import('./commands/rounds.js'),
  'check-config': () => import('./commands/check-config.js'),
  keys: () => import('./commands/keys.js'),
};

void runCli('icosfl-coordinator', COMMANDS);
