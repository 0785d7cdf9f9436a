import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitNameOf, IcosflError } from '../../../common/errors.js';
import { loadBrokerCredentials, loadServerMaterial, type BrokerCredentialFiles } from '../../../common/transport/tls-credentials.js';
import { makeCerts } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/paths.js';

// tls-credentials.ts on real files from scripts/gen-certs.sh: what loads, and each refusal naming key and file.
const { dir, cleanup } = tempDir('icosfl-tls-files-');
test.after(cleanup);
const certs = makeCerts(join(dir, 'certs'), ['agent-a', 'agent-b']);
const label = (k: string) => `federation.${k} (/etc/icosfl/agent.toml)`;
const NONE: BrokerCredentialFiles = { ca: '', cert: '', key: '', username: '', password_file: '' };
const agentA: BrokerCredentialFiles = { ...NONE, ca: certs.ca, ...certs.agent('agent-a') };

function refusal(files: BrokerCredentialFiles): IcosflError {
  try {
    loadBrokerCredentials(files, label);
  } catch (err) {
    assert.instance(err, IcosflError);
    assert.is((err as IcosflError).code, 'TLS_MATERIAL_INVALID');
    return err as IcosflError;
  }
  throw new Error('expected loadBrokerCredentials to refuse');
}

test('gen-certs.sh material loads: the CA, the certificate and key, its CN as the identity', () => {
  const c = loadBrokerCredentials(agentA, label);
  assert.is(c.identity, 'agent-a');
  assert.ok(c.tls?.ca && c.tls.cert && c.tls.key);
  assert.is(c.tls.caFile, certs.ca);
  assert.is(c.tls.certFile, certs.agent('agent-a').cert);
  assert.equal(c.warnings, [], 'gen-certs.sh keys are 0600');
  assert.equal(loadBrokerCredentials(NONE, label), { tls: undefined, username: undefined, password: undefined, identity: undefined, warnings: [] });
});

test('TLS_MATERIAL_INVALID exits 78 (a configuration error)', () => {
  assert.is(exitNameOf('TLS_MATERIAL_INVALID'), 'CONFIG');
});

test('a missing file names the key, the config file and the path', () => {
  const e = refusal({ ...agentA, ca: join(dir, 'nope.crt') });
  assert.match(e.message, `federation.ca (/etc/icosfl/agent.toml): CA file ${join(dir, 'nope.crt')} does not exist`);
  assert.match(refusal({ ...agentA, key: join(dir, 'nope.key') }).message, /^federation\.key .*private key .*nope\.key does not exist/);
});

test('a directory where a file belongs is refused', () => {
  assert.match(refusal({ ...agentA, cert: dir }).message, /^federation\.cert .*is a directory, not a file/);
});

test('a CA file that is no certificate, or a leaf certificate, is refused saying what it holds', () => {
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'not a certificate\n');
  assert.match(refusal({ ...agentA, ca: junk }).message, /holds no PEM certificate/);
  const leaf = refusal({ ...agentA, ca: certs.broker.cert });
  assert.match(leaf.message, /is not a CA certificate .*name the federation's ca\.crt/);
});

test("a key that is not the certificate's is refused naming both files", () => {
  const e = refusal({ ...agentA, key: certs.agent('agent-b').key });
  assert.match(e.message, `federation.key (/etc/icosfl/agent.toml): private key ${certs.agent('agent-b').key} does not belong to certificate ${certs.agent('agent-a').cert}`);
});

test('an encrypted key is refused with the reason a service cannot use it', () => {
  const encrypted = join(dir, 'encrypted.key');
  execFileSync('openssl', ['pkcs8', '-topk8', '-in', certs.agent('agent-a').key, '-out', encrypted, '-v2', 'aes256', '-passout', 'pass:secret'], { stdio: 'ignore', timeout: 10_000 });
  assert.match(refusal({ ...agentA, key: encrypted }).message, /is encrypted: a service cannot type a passphrase/);
  const garbage = join(dir, 'garbage.key');
  writeFileSync(garbage, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  assert.match(refusal({ ...agentA, key: garbage }).message, /garbage\.key is not a PEM private key/);
});

test('a certificate without its key (or a key without its certificate) is refused', () => {
  assert.match(refusal({ ...agentA, key: '' }).message, /^federation\.key .*: is empty but cert is set: a client certificate needs both/);
  assert.match(refusal({ ...agentA, cert: '' }).message, /^federation\.cert .*: is empty but key is set/);
});

test('password_file: the first line is the password; it needs a username, must not be empty; group/world-readable files are warned about', () => {
  const pw = join(dir, 'pw');
  writeFileSync(pw, 's3cret\nignored\n', { mode: 0o600 });
  chmodSync(pw, 0o600);
  const c = loadBrokerCredentials({ ...NONE, username: 'agent-a', password_file: pw }, label);
  assert.is(c.password, 's3cret');
  assert.is(c.username, 'agent-a');
  assert.equal(c.warnings, []);
  assert.match(refusal({ ...NONE, password_file: pw }).message, /^federation\.username .*: is empty but password_file is set/);
  const empty = join(dir, 'empty-pw');
  writeFileSync(empty, '\n');
  assert.match(refusal({ ...NONE, username: 'a', password_file: empty }).message, /password file .*empty-pw is empty/);
  chmodSync(pw, 0o644);
  const open = loadBrokerCredentials({ ...NONE, username: 'agent-a', password_file: pw }, label);
  assert.equal(open.warnings, [`federation.password_file (/etc/icosfl/agent.toml): password file ${pw} can be read by other users; chmod 0600 it`]);
  const keyDir = join(dir, 'open-key');
  mkdirSync(keyDir);
  const key = join(keyDir, 'agent-a.key');
  copyFileSync(certs.agent('agent-a').key, key);
  chmodSync(key, 0o640);
  assert.match(loadBrokerCredentials({ ...agentA, key }, label).warnings.join(), /private key .* can be read by other users; chmod 0600 it/);
});

test('the embedded broker needs the CA and its server certificate', () => {
  const material = loadServerMaterial({ ca: certs.ca, ...certs.broker }, label).material;
  assert.ok(material.ca.length > 0 && material.cert.length > 0 && material.key.length > 0);
  assert.throws(() => loadServerMaterial({ ca: '', ...certs.broker }, label), /federation\.ca .*: is empty: a TLS broker checks client certificates against the federation CA/);
  assert.throws(() => loadServerMaterial({ ca: certs.ca, cert: '', key: '' }, label), /federation\.cert .*: is empty: a TLS broker needs its server certificate/);
});

test('gen-certs.sh: keys 0600, idempotent (keys kept), --force makes new ones, refuses bad ids', async () => {
  const { statSync, readFileSync } = await import('node:fs');
  const { genCerts } = await import('../../helpers/certs.js');
  const out = join(dir, 'idem');
  genCerts(out, ['agent-x']);
  for (const k of ['ca.key', 'broker.key', 'coordinator.key', 'agents/agent-x.key']) assert.is(statSync(join(out, k)).mode & 0o777, 0o600, k);
  for (const c of ['ca.crt', 'broker.crt', 'agents/agent-x.crt']) assert.is(statSync(join(out, c)).mode & 0o777, 0o644, c);
  const key = readFileSync(join(out, 'agents', 'agent-x.key'), 'utf8');
  const second = genCerts(out, ['agent-x', 'agent-y']);
  assert.match(second, /kept .*agent-x\.crt/);
  assert.match(second, /made .*agent-y\.crt \(CN agent-y\)/);
  assert.is(readFileSync(join(out, 'agents', 'agent-x.key'), 'utf8'), key, 'an existing key is kept');
  const ca = readFileSync(join(out, 'ca.crt'), 'utf8');
  const verify = () => execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca.crt'), ...['broker.crt', 'coordinator.crt', 'agents/agent-x.crt', 'agents/agent-y.crt'].map((f) => join(out, f))], { stdio: 'ignore', timeout: 10_000 });
  genCerts(out, ['--force', 'agent-x']);
  assert.is.not(readFileSync(join(out, 'agents', 'agent-x.key'), 'utf8'), key, '--force makes a new key');
  assert.is(readFileSync(join(out, 'ca.crt'), 'utf8'), ca, '--force keeps the CA');
  verify();
  const yKey = readFileSync(join(out, 'agents', 'agent-y.key'), 'utf8');
  genCerts(out, ['--new-ca']);
  assert.is.not(readFileSync(join(out, 'ca.crt'), 'utf8'), ca, '--new-ca makes a new CA');
  assert.is(readFileSync(join(out, 'agents', 'agent-y.key'), 'utf8'), yKey, 'keys stay');
  verify(); // every certificate, agents not named included, was issued again by the new CA
  for (const bad of [['a/b'], ['icosfl-coordinator']]) {
    assert.throws(() => genCerts(out, bad), (e: unknown) => (e as { status?: number }).status === 64, bad.join());
  }
});

test.run();
