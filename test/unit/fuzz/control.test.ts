import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseControlReply } from '../../../common/control/client.js';
import { ControlServer } from '../../../common/control/server.js';
import { ERROR_CODES, IcosflError } from '../../../common/errors.js';
import { FUZZ_RUNS, FUZZ_SEED, Tally, fuzzOptions } from '../../helpers/fuzz.js';

// The control socket's two parsers on hostile lines: the server's request reader
// (common/control/server.ts, over a real unix socket: FUZZ_RUNS generated lines, sent in batches
// of ten with random write boundaries) and the client's reply parser (common/control/client.ts
// parseControlReply, FUZZ_RUNS lines). The server answers every non-blank line with one JSON
// reply and stays up; the client turns any line into a result or a deliberate error.
const LINES_PER_BATCH = 10;
const dir = mkdtempSync(join(tmpdir(), 'icosfl-fuzz-control-'));
const server = new ControlServer(join(dir, 'agent.sock'), pino({ level: 'silent' }));
server.handle('echo', async (req) => req);
server.handle('fail', async (req) => {
  throw typeof req.n === 'number' ? new RangeError('n out of range') : new IcosflError('DATA_INVALID', 'refused');
});
console.log(`  control fuzz: seed ${FUZZ_SEED}, ${FUZZ_RUNS} request lines and ${FUZZ_RUNS} reply lines`);

const jsonish = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({ cmd: fc.oneof(fc.constantFrom('echo', 'fail', 'status', '__proto__', 'constructor', 'toString', ''), fc.jsonValue({ maxDepth: 1 })), n: fc.option(fc.integer()), x: fc.option(fc.string()) }).map((r) => JSON.stringify(r)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom('{', '}', '[]', 'null', '"x"', '{"cmd":', '\u0000', '\uFFFF', '{"__proto__":{"cmd":"echo"}}', ' '),
);

test.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test(`server: ${FUZZ_RUNS} hostile request lines, one JSON reply each, the server stays up`, async () => {
  await server.listen();
  const tally = new Tally();
  let lines = 0;
  const line = jsonish.map((l) => l.replace(/\n/g, ' '));
  await fc.assert(
    fc.asyncProperty(fc.array(line, { minLength: LINES_PER_BATCH, maxLength: LINES_PER_BATCH }), fc.array(fc.nat(), { maxLength: 4 }), async (batch, cuts) => {
      const text = batch.join('\n') + '\n';
      const expected = batch.filter((l) => l.trim()).length;
      lines += batch.length;
      const replies = await new Promise<string[]>((resolve, reject) => {
        const socket: Socket = createConnection(server.path);
        let got = '';
        const timer = setTimeout(() => reject(new Error(`no ${expected} replies within 5 s: ${JSON.stringify(got)}`)), 5000);
        socket.setEncoding('utf8');
        socket.on('error', reject);
        socket.on('data', (d: string) => {
          got += d;
          const done = got.split('\n').slice(0, -1);
          if (done.length >= expected) {
            clearTimeout(timer);
            socket.end();
            resolve(done);
          }
        });
        socket.on('connect', () => {
          // Random write boundaries: a request may arrive in pieces, several in one piece.
          const at = [...new Set(cuts.map((c) => c % text.length))].sort((a, b) => a - b);
          let from = 0;
          for (const c of [...at, text.length]) {
            socket.write(text.slice(from, c));
            from = c;
          }
          if (expected === 0) {
            clearTimeout(timer);
            socket.end();
            resolve([]);
          }
        });
      });
      assert.is(replies.length, expected);
      for (const r of replies) {
        const reply = JSON.parse(r) as { ok: boolean; error?: { code: string } };
        assert.type(reply.ok, 'boolean');
        tally.add(reply.ok ? 'ok' : reply.error!.code);
      }
    }),
    fuzzOptions(Math.ceil(FUZZ_RUNS / LINES_PER_BATCH)),
  );
  console.log(`  server (${lines} lines):`, tally.toJSON());
  assert.ok(lines >= FUZZ_RUNS);
  for (const k of ['ok', 'BAD_REQUEST', 'UNKNOWN_COMMAND', 'INVALID_ARGUMENT', 'DATA_INVALID']) assert.ok(tally.get(k) > 0, `some replies were ${k}`);
});

// Bounded today because the second oversized piece makes server.ts call end() again, which
// errors (write after end) and its error handler destroys the socket; this keeps it so.
test('server: a request line over 1 MiB is refused and the connection closed, however long the client goes on', async () => {
  const outcome = await new Promise<{ reply: string; closedAfterBytes: number }>((resolve) => {
    // allowHalfOpen: this client goes on writing after the server's half-close, as a hostile one may.
    const socket = createConnection({ path: server.path, allowHalfOpen: true });
    let reply = '';
    let sent = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (reply += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ reply, closedAfterBytes: sent }));
    const piece = 'x'.repeat(64 * 1024);
    // At most 64 MiB; the server must cut it off long before.
    const pump = () => {
      while (sent < 64 * 1024 * 1024 && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
      socket.end();
    };
    socket.on('connect', pump);
  });
  assert.match(outcome.reply, /REQUEST_TOO_LARGE/);
  assert.ok(outcome.closedAfterBytes < 32 * 1024 * 1024, `the server read ${outcome.closedAfterBytes} bytes before closing`);
});

test(`client: parseControlReply on ${FUZZ_RUNS} hostile reply lines: a result or a deliberate error`, () => {
  const tally = new Tally();
  const reply = fc.oneof(
    jsonish,
    fc.record({ v: fc.oneof(fc.constant(1), fc.constant(1), fc.jsonValue({ maxDepth: 0 })), ok: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })), result: fc.option(fc.jsonValue({ maxDepth: 2 })), error: fc.option(fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.record({ code: fc.oneof(fc.constantFrom(...Object.keys(ERROR_CODES), 'INVALID_ARGUMENT', 'toString', '__proto__', 'hasOwnProperty'), fc.jsonValue({ maxDepth: 0 })), message: fc.jsonValue({ maxDepth: 1 }) }))) }).map((r) => JSON.stringify(r)),
  );
  fc.assert(
    fc.property(reply, (line) => {
      try {
        parseControlReply(line, 'status');
        tally.add('result');
      } catch (err) {
        // The documented outcomes: the daemon's own error rebuilt (IcosflError of a known code,
        // RangeError for INVALID_ARGUMENT, CONTROL_REFUSED for a foreign code), or CONTROL_PROTOCOL_MISMATCH.
        if (err instanceof IcosflError) {
          assert.ok(Object.hasOwn(ERROR_CODES, err.code), `a known code, not ${err.code}`);
          tally.add(err.code);
        } else if (err instanceof RangeError) {
          assert.match(err.message, /^daemon refused 'status': /);
          tally.add(err.name);
        } else throw err;
      }
    }),
    fuzzOptions(),
  );
  console.log('  client:', tally.toJSON());
  for (const k of ['result', 'CONTROL_PROTOCOL_MISMATCH', 'RangeError', 'CONTROL_REFUSED']) assert.ok(tally.get(k) > 0, `some replies ended ${k}`);
});

test.run();
