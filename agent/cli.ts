#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/** `icosfl-agent <command>`; one file per command under agent/commands/. */
const COMMANDS: CommandTable = {
  sample: () => import('./commands/sample.js'),
};

void runCli('icosfl-agent', COMMANDS);
