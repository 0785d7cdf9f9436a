#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/** `icosfl-agent <command>`; one file per command under agent/commands/. */
const COMMANDS: CommandTable = {
  sample: () => import('./commands/sample.js'),
  run: () => import('./commands/run.js'),
  status: () => import('./commands/status.js'),
  'check-config': () => import('./commands/check-config.js'),
  backends: () => import('./commands/backends.js'),
  predict: () => import('./commands/predict.js'),
  identity: () => import('./commands/identity.js'),
};

void runCli('icosfl-agent', COMMANDS);
