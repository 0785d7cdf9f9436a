// [http] on a port something else holds: `serve` still becomes ready and runs rounds (the
// metrics and status page are not what the federation is for), logs why the endpoint failed, and
// `status` names the address and the errno in words, as the agent does for [prometheus].
import { createServer, type Server } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FederationCluster } from '../../helpers/federation-cluster.js';
import { exitAfter } from '../../helpers/wait.js';

exitAfter(90_000, 'coordinator/http-busy.test');

let holder: Server | undefined;
let cluster: FederationCluster | undefined;

test.after(async () => {
  await cluster?.close();
  await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
});

test('a taken [http] port: ready anyway, the failure logged and in status', async () => {
  holder = createServer();
  await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', () => resolve()));
  const port = (holder.address() as { port: number }).port;
  cluster = await FederationCluster.create({ agents: 1, broker: 'embedded', rounds: 1, coordinatorLogLevel: 'info', http: { enabled: true, host: '127.0.0.1', port } });
  const coordinator = await cluster.startCoordinator();
  const failed = coordinator.find('http endpoint failed to listen; the rounds go on without metrics and status page');
  assert.is(failed.length, 1, `the failure is logged once:\n${coordinator.tail()}`);
  assert.match(String(failed[0]!.reason), `cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE); choose another http.port`);
  assert.is(coordinator.find('coordinator ready')[0]!.http, null);
  const status = (await cluster.status()) as unknown as { ready: boolean; http: string | null; httpError: string | null };
  assert.is(status.ready, true);
  assert.is(status.http, null);
  assert.match(String(status.httpError), `127.0.0.1:${port}`);
  assert.match(String(status.httpError), 'EADDRINUSE');
});

test.run();
