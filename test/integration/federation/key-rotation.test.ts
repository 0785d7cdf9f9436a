// Key rotation in a running federation (real processes: `icosfl-coordinator serve` with its
// embedded broker and three `icosfl-agent run` daemons): a session runs under key epoch 0;
// `keys rotate` writes epoch 1; two agents get the new agent.json as federation.next_keys and the
// running coordinator its coordinator.json as coordinator.next_keys; the next session runs under
// epoch 1 without the coordinator restarting, with those two agents; the third, holding only the
// old key, says it is incompatible. Status (coordinator and agent) names the epoch.
import { copyFileSync, appendFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgentBundle } from '../../../common/crypto/index.js';
import { FederationCluster } from '../../helpers/federation-cluster.js';
import { exitAfter, waitFor } from '../../helpers/wait.js';

exitAfter(170_000, 'federation/key-rotation.test');

test('keys rotate: the next session runs under the new epoch, the coordinator never restarts, an old-key agent is incompatible', async () => {
  const cluster = await FederationCluster.create({ agents: 3, broker: 'embedded', rounds: 1, federation: { min_agents: 2, session_interval_s: 2 } });
  try {
    const keysDir = join(cluster.dir, 'keys');
    // Each agent's next_keys: its own file (the agents share one keys directory here). [federation] is the last section.
    const nextOf = (i: number) => join(cluster.agents[i]!.dir, 'agent-next.json');
    for (let i = 0; i < 3; i++) appendFileSync(cluster.agents[i]!.config, `next_keys = ${JSON.stringify(nextOf(i))}\n`);
    await cluster.startCoordinator();
    await cluster.startAgents();
    const pid = (await cluster.ask('status')).pid;
    const first = await cluster.waitForRound((r) => r.phase === 'final' && r.outcome === 'completed', 100_000, 'the first session to complete');
    assert.is(first.keyEpoch, 0);
    assert.is(((await cluster.status()) as unknown as { federation: { keyEpoch: number } }).federation.keyEpoch, 0);

    const next = join(cluster.dir, 'next');
    const rotated = await cluster.cli('coordinator', ['keys', 'rotate', '--from', keysDir, '--out', next]);
    assert.is(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /key epoch 1/);
    const newKey = loadAgentBundle(join(next, 'agent.json')).params.keyId;
    for (const i of [0, 1]) {
      copyFileSync(join(next, 'agent.json'), nextOf(i));
      chmodSync(nextOf(i), 0o600);
    }
    // The agents pick the bundle up while running and say they hold both keys.
    await waitFor(async () => [0, 1].every((i) => (cluster.agent(i).find('key bundle loaded', { keyId: newKey }).length > 0)), 20_000, 'agents 0 and 1 to load the next key');
    const agentsView = async () => ((await cluster.ask('agents')) as { agents: { id: string; keyIds?: string[] | null; state: string; reason: string | null }[] }).agents;
    await waitFor(async () => (await agentsView()).filter((a) => a.keyIds?.includes(newKey)).length === 2, 20_000, 'the coordinator to see two holders of the next key');
    copyFileSync(join(next, 'coordinator.json'), join(keysDir, 'coordinator-next.json'));

    const switched = await cluster.waitForRound((r) => r.session >= 2 && r.keyEpoch === 1 && r.phase === 'final' && r.outcome === 'completed', 120_000, 'a session under key epoch 1 to complete');
    const rounds = await cluster.rounds();
    const epoch1 = rounds.filter((r) => r.keyEpoch === 1);
    assert.ok(epoch1.every((r) => r.session === switched.session || r.session > first.session), 'epochs change at a session boundary');
    assert.ok(epoch1.filter((r) => r.phase !== 'final').every((r) => r.outcome === 'completed' && r.participants === 2), 'the two agents with the new key take part');
    assert.ok(rounds.filter((r) => r.session === first.session).every((r) => r.keyEpoch === 0));
    const st = (await cluster.status()) as unknown as { pid: number; federation: { keyEpoch: number; keyId: string } };
    assert.equal([st.pid, st.federation.keyEpoch, st.federation.keyId], [pid, 1, newKey]);
    assert.is(cluster.runs.get('coordinator')!.length, 1, 'the coordinator never restarted');
    assert.ok(cluster.coordinator.find('key epoch switched: rounds from now on are announced under the new key', { epoch: 1 }).length === 1);

    const stale = (await agentsView()).find((a) => a.id === 'agent-2')!;
    assert.is(stale.state, 'incompatible');
    assert.match(stale.reason ?? '', /key epoch 1/);
    const text = await cluster.cli('coordinator', ['status', '--socket', cluster.coordinatorSocket]);
    assert.match(text.stdout, /key epoch 1 \(/);
    const agentStatus = await cluster.cli('agent', ['status', '--config', cluster.agents[0]!.config]);
    assert.match(agentStatus.stdout, /key epoch 1 \(holds epoch 0 [0-9a-f]{12}, epoch 1 [0-9a-f]{12}\)/);
  } finally {
    await cluster.close();
  }
});

test.run();
