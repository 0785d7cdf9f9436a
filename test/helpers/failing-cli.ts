#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { runCli, type Command, type CommandTable } from '../../common/cli.js';

/**
 * A CLI on the real runCli (common/cli.ts) whose commands fail the ways real code does: a zod
 * parse nobody mapped, JSON.parse on a broken file, an fs call on a bad path, a bug, a thrown
 * non-Error, a failure in a timer. test/unit/common/cli-failures.test.ts runs it as a child.
 */
const fail = (run: (argv: string[]) => unknown): (() => Promise<{ default: Command }>) => async () => ({
  default: { summary: 'fails', operands: 'ARGS', flags: {}, run: async ({ positionals }) => (await run(positionals), 0) },
});

const COMMANDS: CommandTable = {
  zod: fail(() => z.object({ port: z.number().int(), mode: z.enum(['a', 'b']) }).parse({ port: 'x', mode: 'c' })),
  json: fail((argv) => JSON.parse(readFileSync(argv[0]!, 'utf8'))),
  read: fail((argv) => readFileSync(argv[0]!)),
  mkdir: fail((argv) => mkdirSync(argv[0]!)),
  write: fail((argv) => writeFileSync(argv[0]!, 'x'.repeat(1 << 16))),
  bug: fail(() => (undefined as unknown as { x: { y: number } }).x.y),
  object: fail(() => {
    throw { reason: 'plain object' };
  }),
  // Parsed by the runner from its definitions (common/cli-flags.ts), as every real command is.
  flags: async () => ({ default: { summary: 'takes --out and --json', flags: { out: { type: 'string', value: 'FILE', description: 'a file' }, json: { type: 'boolean', description: 'JSON' } }, run: async () => 0 } }),
  range: fail(() => {
    throw new RangeError("--limit must be a positive integer, got 'x'");
  }),
  timer: fail(
    () =>
      new Promise(() => {
        setTimeout(() => {
          throw new Error('boom in a timer');
        }, 10);
      }),
  ),
};

void runCli('failing-cli', COMMANDS, { addon: async () => ({ path: null, loaded: false, error: 'not used here', napiVersion: null }) as never });
