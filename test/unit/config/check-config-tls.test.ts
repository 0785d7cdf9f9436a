import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCerts } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/paths.js';
import { runCli } from '../../integration/daemon/harness.js';

/** `icosfl-agent check-config` reads the TLS files the federation job would: exit 78 naming the key and file. */
const { dir, cleanup } = tempDir('icosfl-check-tls-');
test.after(cleanup);
const certs = makeCerts(join(dir, 'tls'), ['agent-a', 'agent-b']);

function config(name: string, federation: Record<string, string>): string {
  const path = join(dir, `${name}.toml`);
  const lines = Object.entries({ enabled: true, broker: 'mqtts://broker.example:8883', codec: 'plaintext', federation_id: 'f', agent_id: 'agent-a', ca: certs.ca, ...federation }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  writeFileSync(path, `[agent]\nstate_dir = ${JSON.stringify(join(dir, 'state'))}\n[federation]\n${lines.join('\n')}\n`);
  return path;
}

test("the agent's own certificate and key: exit 0", async () => {
  const r = await runCli(['check-config', '--quiet', '--config', config('ok', certs.agent('agent-a'))]);
  assert.is(r.code, 0, r.stderr);
});

test("another agent's certificate: exit 78 naming federation.cert, the CN and the fix", async () => {
  const path = config('other-cn', certs.agent('agent-b'));
  const r = await runCli(['check-config', '--quiet', '--config', path]);
  assert.is(r.code, 78, r.stderr);
  assert.match(r.stderr, `federation.cert (${path}): certificate ${certs.agent('agent-b').cert} is for 'agent-b', not this agent 'agent-a'`);
});

test('a key that is not the certificate\'s: exit 78 naming federation.key and both files', async () => {
  const path = config('mismatch', { cert: certs.agent('agent-a').cert, key: certs.agent('agent-b').key });
  const r = await runCli(['check-config', '--quiet', '--config', path]);
  assert.is(r.code, 78, r.stderr);
  assert.match(r.stderr, `federation.key (${path}): private key ${certs.agent('agent-b').key} does not belong to certificate ${certs.agent('agent-a').cert}`);
});

test.run();
