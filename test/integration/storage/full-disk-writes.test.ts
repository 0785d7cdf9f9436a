import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { writeFileAtomic } from '../../../common/atomic-file.js';
import { generateFederation, writeFederation } from '../../../common/crypto/index.js';
import { isIcosflError } from '../../../common/errors.js';
import { storageHealth } from '../../../common/storage-health.js';
import type { RoundEvent } from '../../../coordinator/round/events.js';
import { FileJournal } from '../../../coordinator/round/journal.js';
import { loadModel, MODEL_FILE, saveModel, type SavedModel } from '../../../agent/trainer/persist.js';
import { mountSmallFs } from '../../helpers/small-fs.js';
import { bodyOf, Driver, MODEL, testSettings } from '../../unit/round/driver.js';
import type { Message, Presence } from '../../../common/protocol/messages.js';
import { parseFederationModel } from '../../../common/protocol/federation-model.js';
import type { InboundHandler, Messenger } from '../../../common/transport/messenger.js';
import { RoundRunner } from '../../../coordinator/round/runner.js';
import { expectedParams } from '../../../coordinator/round/state.js';
import { plaintextStrategy } from '../../../coordinator/strategy/aggregation.js';

// State files on a real full filesystem (a 2 MiB tmpfs): a write that meets ENOSPC leaves the
// previous file intact and no temp file, throws STATE_WRITE_FAILED naming the path and errno,
// is recorded in storageHealth, and the next write after space is freed succeeds and clears it.
const fs = mountSmallFs(2 * 1024 * 1024);
test.after(() => fs.unmount());
test.before.each(() => fs.release());
let n = 0;
const freshDir = () => {
  const d = join(fs.dir, `d${n++}`);
  mkdirSync(d);
  return d;
};

function expectWriteFailed(fn: () => void, path: string): void {
  try {
    fn();
    assert.unreachable('the write succeeded on a full filesystem');
  } catch (err) {
    assert.ok(isIcosflError(err, 'STATE_WRITE_FAILED'), String(err));
    assert.match(err.message, path);
    assert.match(err.message, 'ENOSPC');
    assert.is(err.details?.path, path);
    assert.is(err.details?.errno, 'ENOSPC');
  }
}

test('writeFileAtomic on a full disk: previous file intact, temp removed, reported; recovers when space is back', () => {
  const dir = freshDir();
  const path = join(dir, 'state.bin');
  writeFileAtomic(path, [Buffer.from('version 1')], { kind: 'snapshot' });
  const failuresBefore = storageHealth.report().write_failures.snapshot;
  fs.fill();
  expectWriteFailed(() => writeFileAtomic(path, [Buffer.alloc(256 * 1024, 7)], { kind: 'snapshot' }), path);
  assert.is(readFileSync(path, 'utf8'), 'version 1');
  assert.equal(readdirSync(dir), ['state.bin'], 'no temp file left');
  const r = storageHealth.report();
  assert.ok(r.degraded);
  assert.is(r.write_failures.snapshot, failuresBefore + 1);
  const f = r.failing.find((x) => x.path === path);
  assert.equal([f?.kind, f?.errno, f?.count], ['snapshot', 'ENOSPC', 1]);

  fs.release();
  writeFileAtomic(path, [Buffer.alloc(256 * 1024, 7)], { kind: 'snapshot' });
  assert.is(readFileSync(path).length, 256 * 1024);
  assert.not.ok(storageHealth.report().failing.some((x) => x.path === path), 'cleared by the write that succeeded');
});

test('exclusive writes refuse an existing file with EEXIST, which is not a storage failure', () => {
  const dir = freshDir();
  const path = join(dir, 'key.json');
  writeFileAtomic(path, [Buffer.from('{}')], { kind: 'keys', exclusive: true });
  const before = storageHealth.report().write_failures.keys;
  try {
    writeFileAtomic(path, [Buffer.from('{"other":1}')], { kind: 'keys', exclusive: true });
    assert.unreachable();
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'EEXIST');
  }
  assert.is(readFileSync(path, 'utf8'), '{}');
  assert.equal(readdirSync(dir), ['key.json']);
  assert.is(storageHealth.report().write_failures.keys, before);
});

test("the agent's saved model survives a save on a full disk", () => {
  const dir = freshDir();
  const model = (version: number, size: number): SavedModel => ({
    spec: { kind: 'mlp', lookback: 4, horizon: 1, channels: 1, hiddenUnits: 2 },
    scaler: { mean: [0], std: [1] },
    channelNames: ['cpu'],
    version,
    round: 0,
    savedAt: new Date(0).toISOString(),
    weights: new Float32Array(size).fill(version),
  });
  saveModel(dir, model(1, 16));
  fs.fill();
  expectWriteFailed(() => saveModel(dir, model(2, 300_000)), join(dir, MODEL_FILE));
  assert.is(loadModel(dir)?.version, 1, 'the previous model loads');
  assert.equal(readdirSync(dir), [MODEL_FILE]);
  fs.release();
  saveModel(dir, model(2, 300_000));
  assert.is(loadModel(dir)?.version, 2);
});

test('key files: a full disk leaves neither half a key nor one of the pair; a retry then succeeds', async () => {
  const dir = freshDir();
  const fed = await generateFederation({ federationId: 'full-disk' });
  fs.fill();
  try {
    writeFederation(join(dir, 'keys'), fed);
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'STATE_WRITE_FAILED'), String(err));
    assert.match(err.message, /keys file .*agent\.json: ENOSPC/);
  }
  assert.equal(readdirSync(join(dir, 'keys')), [], 'nothing left to block the retry');
  fs.release();
  const { agentPath, coordinatorPath } = writeFederation(join(dir, 'keys'), fed);
  assert.ok(JSON.parse(readFileSync(agentPath, 'utf8')).secretKey);
  assert.ok(JSON.parse(readFileSync(coordinatorPath, 'utf8')).params);
});

const silent = pino({ level: 'silent' });
const event = (agent: string, now: number, params: number): RoundEvent => ({
  type: 'update',
  now,
  message: { type: 'update', federation: 't', agent, session: 1, round: 1, phase: 'fedavg', samples: 3, windows: 4, baseLoss: 'Infinity', codec: 'plaintext', body: bodyOf(params, 0.5) },
});

test('a journal append on a full disk is not recorded, the journal stays clean, and appends resume when space is back', () => {
  const dir = freshDir();
  const j = new FileJournal(dir, silent);
  j.load();
  j.append({ type: 'start', now: 1 });
  j.append(event('a', 2, 29));
  fs.fill();
  // 100,000 parameters ≈ 400 KB: far past the slack of the journal file's last page.
  try {
    j.append(event('b', 3, 100_000));
    assert.unreachable('appended on a full disk');
  } catch (err) {
    assert.ok(isIcosflError(err, 'STATE_WRITE_FAILED'), String(err));
    assert.match(err.message, /journal file .*journal-0\.log: ENOSPC/);
    assert.match(err.message, /the update event was not recorded and not applied/);
  }
  assert.ok(storageHealth.report().failing.some((f) => f.kind === 'journal'));
  fs.release();
  j.append(event('c', 4, 29));
  assert.not.ok(storageHealth.report().failing.some((f) => f.kind === 'journal'), 'cleared');
  j.close();
  const again = new FileJournal(dir, silent);
  const { events } = again.load();
  assert.equal(events.map((e) => (e.type === 'update' ? e.message.agent : e.type)), ['start', 'a', 'c'], 'b was never accepted; nothing torn');
  assert.is(again.updateBodies(1, ['a', 'c']).length, 2);
  again.close();
});

test('a snapshot on a full disk keeps the journal it would have replaced', () => {
  const dir = freshDir();
  const j = new FileJournal(dir, silent);
  j.load();
  j.append({ type: 'start', now: 1 });
  fs.fill();
  const big = { padding: 'x'.repeat(300_000) } as never;
  try {
    j.checkpoint(big);
    assert.unreachable();
  } catch (err) {
    assert.ok(isIcosflError(err, 'STATE_WRITE_FAILED'), String(err));
    assert.match(err.message, /snapshot file .*state\.json: ENOSPC/);
  }
  assert.ok(readdirSync(dir).includes('journal-0.log'));
  assert.not.ok(readdirSync(dir).some((f) => f.includes('.tmp-')));
  j.close();
  fs.release();
  const reopened = new FileJournal(dir, silent);
  assert.equal(reopened.load().events.map((e) => e.type), ['start']);
  reopened.close();
});

/** The runner's messenger, reduced to what it sends and a way to deliver (the journal and the disk under it are real). */
function recordingMessenger(): { messenger: Messenger; deliver: (m: Message) => Promise<void>; sent: Message[] } {
  let handler: InboundHandler | undefined;
  const sent: Message[] = [];
  const messenger = {
    onMessage: (h: InboundHandler) => void (handler = h),
    send: async (m: Message) => {
      sent.push(m);
      return 0;
    },
    sendGlobal: async (m: Message) => {
      sent.push(m);
      return { chunks: 1, bytes: 100 };
    },
  } as unknown as Messenger;
  return { messenger, sent, deliver: async (m) => void (await handler!(m, { topic: '', retained: false, hash: '', bytes: 0 })) };
}

test('the coordinator does not accept an update whose journal write failed; the same update is taken once space is back', async () => {
  const dir = freshDir();
  // 256 ridge features: a first-phase (ridge) update body of ≈ 138 KB, far past the slack of the
  // journal file's last page.
  const settings = testSettings({ model: parseFederationModel({ ...MODEL, ridgeFeatures: 256 }) });
  const journal = new FileJournal(dir, silent);
  let now = 1000;
  const { messenger, deliver } = recordingMessenger();
  const runner = new RoundRunner({ settings, messenger, journal, strategy: plaintextStrategy(), logger: silent, clock: () => now, tickMs: 3_600_000 });
  await runner.start();
  try {
    for (const agent of ['a', 'b']) {
      now += 10;
      await deliver({ type: 'presence', federation: 't', agent, state: 'online', at: now } satisfies Presence);
    }
    assert.is(runner.state.current?.round, 1);
    const phase = runner.state.current!.phase;
    const update = new Driver(settings, { state: runner.state, now: 1030 }).updateMessage('a', { samples: 4, body: bodyOf(expectedParams(settings, phase)) });
    fs.fill();
    now = 1030;
    try {
      await runner.dispatch({ type: 'update', now, message: update });
      assert.unreachable(`dispatched on a full disk; rejected: ${JSON.stringify(runner.state.rejected)}`);
    } catch (err) {
      assert.ok(isIcosflError(err, 'STATE_WRITE_FAILED'), String(err));
    }
    assert.not.ok('a' in runner.state.current!.updates, 'not accepted');
    fs.release();
    await runner.dispatch({ type: 'update', now: 1040, message: update });
    assert.ok('a' in runner.state.current!.updates, 'the resend is taken, not dropped as a duplicate');
  } finally {
    await runner.stop();
  }
  journal.close();
  const reopened = new FileJournal(dir, silent);
  const updates = reopened.load().events.filter((e) => e.type === 'update');
  assert.is(updates.length, 1, 'journaled once');
  reopened.close();
});

test.run();
