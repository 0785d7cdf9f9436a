#!/usr/bin/env node
import { runCli, type CommandTable } from '../common/cli.js';

/**
 * `icosfl-simulate <command>`: the code that drives both sides of a federation, agents and
 * coordinator, in one place (the only folder that imports agent/ and coordinator/ together).
 */
const COMMANDS: CommandTable = {
  federation: () => import('./commands/federation.js'),
  run: () => import('./commands/run.js'),
  convert: () => import('./commands/convert.js'),
};

void runCli('icosfl-simulate', COMMANDS);
