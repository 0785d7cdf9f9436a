// A federation session over mqtts:// with client certificates from scripts/gen-certs.sh: the
// coordinator process and 2 agent daemons, (a) through a real Mosquitto running the shipped
// deploy/mosquitto/icosfl.conf and its ACL, (b) through the coordinator's embedded broker with
// TLS. Every round completes with both agents, both install the federated model, and each end
// reports the mqtts:// broker it used.
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RoundSummary } from '../../../coordinator/round/state.js';
import { makeCerts, shippedMosquittoConfig } from '../../helpers/certs.js';
import { FederationCluster } from '../../helpers/federation-cluster.js';
import { startMosquitto, type MosquittoBroker } from '../../helpers/mosquitto.js';
import { tempDir } from '../../helpers/paths.js';
import { exitAfter } from '../../helpers/wait.js';

exitAfter(170_000, 'federation/tls.test');
const AGENTS = 2;
const ROUNDS = 1;
const { dir, cleanup } = tempDir('icosfl-fed-tls-');
const certs = makeCerts(join(dir, 'certs'), Array.from({ length: AGENTS }, (_, i) => `agent-${i}`));

function tlsSuite(name: string, broker: () => Promise<{ url: 'embedded' | string; close(): Promise<void> }>) {
  const s = suite(name);
  let cluster: FederationCluster | undefined;
  let close: (() => Promise<void>) | undefined;
  let rounds: RoundSummary[] = [];

  s.before(async () => {
    const b = await broker();
    close = b.close;
    cluster = await FederationCluster.create({ agents: AGENTS, broker: b.url, rounds: ROUNDS, intervalMs: 100, tls: certs, coordinatorLogLevel: 'info' });
    await cluster.startCoordinator();
    try {
      await cluster.startAgents();
      await cluster.waitForRound((r) => r.session === 1 && r.phase === 'final' && r.outcome === 'completed', 120_000, 'the final round to complete');
      rounds = (await cluster.rounds()).filter((r) => r.session === 1);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.dump()}`);
    }
  });
  s.after(async () => {
    await cluster?.close();
    await close?.();
  });

  s('every round of the session completed with both agents', () => {
    assert.equal(rounds.map((r) => r.phase), ['ridge', 'fedavg', 'final']);
    for (const r of rounds) {
      assert.is(r.outcome, 'completed', `round ${r.round}: ${r.reason}`);
      if (r.phase === 'final') assert.is(r.acks, AGENTS);
      else assert.is(r.participants, AGENTS);
    }
  });

  s('both agents installed the federated model, connected over mqtts://', async () => {
    const final = rounds.find((r) => r.phase === 'final')!;
    for (let i = 0; i < AGENTS; i++) {
      const f = (await cluster!.agentStatus(i)).federation as { broker: string; connected: boolean; model: { round: number } | null };
      assert.match(f.broker, /^mqtts:\/\/127\.0\.0\.1:\d+/);
      assert.ok(f.connected, `agent-${i} connected`);
      assert.is(f.model?.round, final.round, `agent-${i} installed the final round's model`);
    }
    const status = (await cluster!.status()) as unknown as { broker: { url: string } };
    assert.match(status.broker.url, /^mqtts:\/\/127\.0\.0\.1:\d+/);
  });

  return s;
}

tlsSuite('mosquitto (deploy/mosquitto/icosfl.conf, client certificates)', async () => {
  const m: MosquittoBroker = await startMosquitto({ tls: true, listenerConfig: (port) => shippedMosquittoConfig(port, certs.dir) });
  return { url: m.url, close: () => m.cleanup() };
}).run();

const embedded = tlsSuite('embedded broker with TLS', async () => ({ url: 'embedded', close: async () => cleanup() }));
embedded.run();
