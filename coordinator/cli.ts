#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/** `icosfl-coordinator <command>`; one file per command under coordinator/commands/. */
const COMMANDS: CommandTable = {
};

void runCli('icosfl-coordinator', COMMANDS);
