#!/usr/bin/env node
import { runCli } from '../common/cli.js';
import { COMMANDS } from './commands/index.js';

void runCli('icosfl-coordinator', COMMANDS, { addon: async () => (await import('../native/load-addon.js')).addonInfo() });
