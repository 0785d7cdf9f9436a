import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentCipher, generateFederation, type AgentBundle, type CoordinatorBundle } from '../../../common/crypto/index.js';
import { DEFAULT_FEDERATION_MODEL, modelConfigHash, modelParamCount } from '../../../common/protocol/federation-model.js';
import { decodeFrame, encodeMessage, rejectReason } from '../../../common/protocol/frame.js';
import { updateFor, type Announce, type Update } from '../../../common/protocol/messages.js';
import { shardOf } from '../../../common/protocol/shards.js';
import { COORDINATOR_SIGNER, generateSigningKey, signBlock, verifyBlock, NonceCache } from '../../../common/protocol/signature.js';
import { createPublicKey } from 'node:crypto';
import { ShardCollector } from '../../../coordinator/aggregator/shard-collector.js';
import { KIND_EXPANDED } from '../../../common/crypto/wire.js';
import { isIcosflError } from '../../../common/errors.js';

// An aggregator worker's pure part (coordinator/aggregator/shard-collector.ts): which updates it
// takes, when it sends, and that its partial sum's bytes do not depend on arrival order; then the
// partial message's signature (the coordinator's key, replay-checked) and its strict header.
let agent: AgentBundle;
let coordinator: CoordinatorBundle;
let cipher: AgentCipher;
const MODEL = { ...DEFAULT_FEDERATION_MODEL, ridgeFeatures: 0 };
const PARAMS = modelParamCount(MODEL);
const mine: string[] = [];
const others: string[] = [];

test.before(async () => {
  ({ agent, coordinator } = await generateFederation({ federationId: 'f' }));
  cipher = await AgentCipher.create(agent);
  for (let i = 0; mine.length < 3 || others.length < 1; i++) (shardOf(`e${i}`, 3) === 1 ? mine : others).push(`e${i}`);
});
test.after(() => cipher.dispose());

const ANNOUNCE = (): Announce => ({
  type: 'announce',
  federation: 'f',
  session: 1,
  round: 5,
  phase: 'fedavg',
  step: 1,
  base: 0,
  deadline: 100_000,
  issuedAt: 0,
  codec: 'ckks',
  keyId: coordinator.params.keyId,
  weightCap: 50,
  model: MODEL,
  configHash: modelConfigHash(MODEL),
  shards: [4, 3, 2],
});

function collector(): ShardCollector {
  return new ShardCollector({ shard: 1, shards: 3, federation: 'f', bundleFor: (keyId) => (keyId === coordinator.params.keyId ? coordinator : undefined), marginMs: 5_000 });
}

const update = (a: Announce, id: string, samples = 7): Update => updateFor(a, id, { samples, windows: 9, body: cipher.encryptUpdate(new Float32Array(PARAMS).fill(0.125), samples) });

test('takes only its own shard of the announced round, waits for as many agents as the announcement expects on it, then sums them', () => {
  const a = ANNOUNCE();
  const c = collector();
  assert.equal(c.onAnnounce(a), { taken: true });
  const refused = c.onUpdate({ ...update(a, others[0]!), shard: 1 });
  assert.is(refused.taken ? '' : refused.reason, 'wrong-shard');
  const over = c.onUpdate(update(a, mine[0]!, 51));
  assert.is(over.taken ? '' : over.reason, 'weight');
  const bad = update(a, mine[0]!);
  bad.body = bad.body.subarray(0, 100);
  const badBody = c.onUpdate(bad);
  assert.is(badBody.taken ? '' : badBody.reason, 'bad-body');
  const stale = c.onUpdate({ ...update(a, mine[0]!), round: 4 });
  assert.is(stale.taken ? '' : stale.reason, 'stale');
  const us = mine.map((id) => update(a, id));
  assert.ok(c.onUpdate(us[0]!).taken);
  assert.ok(c.onUpdate(us[1]!).taken);
  assert.not.ok(c.due(13), 'the announcement expects three agents on shard 1');
  assert.ok(c.due(a.deadline - 5_000), 'the margin before the deadline is reached');
  assert.ok(c.onUpdate(us[2]!).taken);
  assert.ok(c.due(15));
  const p = c.partial();
  assert.equal(p.agents.map((x) => x.agent), [...mine].sort());
  assert.is(p.shard, 1);
  assert.is(p.shards, 3);
  assert.is(p.round, 5);
  assert.not.ok(c.due(16), 'sent once');
  const late = c.onUpdate(update(a, mine[0]!));
  assert.is(late.taken ? '' : late.reason, 'late');
  const out = cipher.decryptAggregate(p.body, { paramCount: PARAMS });
  assert.is(out.clients, 3);
  assert.ok(Math.abs(out.weights[0]! - 0.125) < 1e-3);

  // Same updates, other arrival order: the same bytes.
  const d = collector();
  d.onAnnounce(a);
  for (const u of [...us].reverse()) d.onUpdate(u);
  assert.equal(d.partial().body, p.body);
  // A round whose whole aggregate will be expanded (over 376 agents expected): summed as the
  // updates arrive, written as kind 3, the same bytes in either order, and the same decryption.
  const big = { ...a, round: 6, shards: [400, 3, 2] };
  const sums = [us, [...us].reverse()].map((order) => {
    const x = collector();
    x.onAnnounce(big);
    for (const u of order) assert.ok(x.onUpdate({ ...u, round: 6 }).taken);
    return x.partial().body;
  });
  assert.is(sums[0]![5], KIND_EXPANDED);
  assert.equal(sums[0], sums[1]);
  assert.equal(cipher.decryptAggregate(sums[0]!, { paramCount: PARAMS }).weights, out.weights);
  // The final round, and an announcement of another shard count, start no collection.
  const e = collector();
  assert.equal(e.onAnnounce({ ...a, phase: 'final', step: 0, round: 6 }), { taken: true });
  assert.is(e.round, undefined);
  const wrong = e.onAnnounce({ ...a, shards: [1, 1], round: 7 });
  assert.is(wrong.taken ? '' : wrong.reason, 'wrong-shard');
});

test('key rotation: a round under a key the worker lacks starts no collection; an update of another key epoch than its round is refused', () => {
  const a = ANNOUNCE();
  const c = collector();
  const unknown = c.onAnnounce({ ...a, keyId: 'f'.repeat(32), keyEpoch: 1 });
  assert.is(unknown.taken ? '' : unknown.reason, 'wrong-key');
  assert.is(c.round, undefined);
  assert.ok(c.onAnnounce(a).taken);
  const other = c.onUpdate({ ...update(a, mine[0]!), keyEpoch: 1 });
  assert.is(other.taken ? '' : other.reason, 'wrong-key-epoch');
  assert.ok(c.onUpdate(update(a, mine[0]!)).taken);
});

test("a partial sum is signed with the coordinator's key, refused when signed by anyone else or replayed", () => {
  const a = ANNOUNCE();
  const c = collector();
  c.onAnnounce(a);
  c.onUpdate(update(a, mine[0]!));
  const p = c.partial();
  const key = generateSigningKey();
  const now = 1_000;
  const wire = encodeMessage(p, (frame) => signBlock(p, frame, { id: COORDINATOR_SIGNER, key }, now));
  const decoded = decodeFrame(wire, new Set(['partial']));
  assert.equal(decoded.message, p);
  const replay = new NonceCache();
  const keyOf = (id: string) => (id === COORDINATOR_SIGNER ? { key: createPublicKey(key) } : { refused: 'unknown-signer' as const, detail: id });
  verifyBlock(decoded.message, decoded.signed, decoded.signature, { keyOf, now, replay });
  const refusedWith = (fn: () => void) => {
    try {
      fn();
      return 'accepted';
    } catch (err) {
      assert.ok(isIcosflError(err, 'PROTOCOL_MALFORMED'));
      return rejectReason(err);
    }
  };
  assert.is(refusedWith(() => verifyBlock(decoded.message, decoded.signed, decoded.signature, { keyOf, now, replay })), 'replayed');
  const byAgent = encodeMessage(p, (frame) => signBlock(p, frame, { id: mine[0]!, key }, now));
  const d2 = decodeFrame(byAgent);
  assert.is(refusedWith(() => verifyBlock(d2.message, d2.signed, d2.signature, { keyOf, now })), 'signer-mismatch');
  const forged = encodeMessage(p, (frame) => signBlock(p, frame, { id: COORDINATOR_SIGNER, key: generateSigningKey() }, now));
  const d3 = decodeFrame(forged);
  assert.is(refusedWith(() => verifyBlock(d3.message, d3.signed, d3.signature, { keyOf, now })), 'bad-signature');
  // The header is strict: an unknown field, an empty agent list, a shard count of 1.
  for (const bad of [{ ...p, extra: 1 }, { ...p, agents: [] }, { ...p, shards: 1 }]) {
    assert.throws(() => encodeMessage(bad as typeof p), /encodeMessage: partial\./);
  }
});

test.run();
