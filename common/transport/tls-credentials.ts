import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { IcosflError } from '../errors.js';

/**
 * A broker connection's TLS material and credentials, read from the files the config names and
 * checked before any connection is tried, so a wrong file is reported as the key and the file
 * that hold it (exit 78), not as a handshake failure later. Shared by the agent
 * ([federation] ca, cert, key, username, password_file) and the coordinator ([broker] ...).
 */
export interface BrokerCredentialFiles {
  /** PEM CA certificate(s) the broker's certificate must chain to; '' = the system's CAs. */
  ca: string;
  /** PEM client certificate (its CN is the client's identity) and its unencrypted key; both or neither. */
  cert: string;
  key: string;
  username: string;
  /** A file holding the password (first line): a password is never written in a config file. */
  password_file: string;
}

/** What the MQTT transport takes (mqtt.ts); the file names ride along for its error messages. */
export interface TlsClientOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  caFile?: string;
  certFile?: string;
}

export interface BrokerCredentials {
  tls: TlsClientOptions | undefined;
  username: string | undefined;
  password: string | undefined;
  /** The certificate's subject CN: the identity a broker with use_identity_as_username sees. */
  identity: string | undefined;
  /** Not fatal, said at every start: a key or password file others can read. */
  warnings: string[];
}

/** How the caller names a key in messages: `federation.ca (/etc/icosfl/agent.toml)`. */
export type KeyLabel = (key: keyof BrokerCredentialFiles) => string;

function fail(label: string, message: string, cause?: unknown): never {
  throw new IcosflError('TLS_MATERIAL_INVALID', `${label}: ${message}`, cause === undefined ? {} : { cause });
}

function readFile(label: string, path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(label, `${what} ${path} does not exist (scripts/gen-certs.sh makes one)`, err);
    if (code === 'EACCES') fail(label, `${what} ${path} cannot be read by this user (uid ${process.getuid?.() ?? '?'}): give the service's user read access (keys: owner only, mode 0600)`, err);
    if (code === 'EISDIR') fail(label, `${what} ${path} is a directory, not a file`, err);
    fail(label, `${what} ${path} cannot be read (${code ?? String(err)})`, err);
  }
}

/** Every certificate in a PEM file (a CA file may hold a chain or several CAs). */
function parseCertificates(label: string, path: string, pem: Buffer, what: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) fail(label, `${what} ${path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')`);
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      return fail(label, `${what} ${path} holds a malformed certificate (${(err as Error).message})`, err);
    }
  });
}

function checkValidity(label: string, path: string, cert: X509Certificate, what: string, now = Date.now()): void {
  if (Date.parse(cert.validTo) < now) fail(label, `${what} ${path} expired on ${cert.validTo}: issue a new one (scripts/gen-certs.sh --force, or delete it and run the script again)`);
  if (Date.parse(cert.validFrom) > now) fail(label, `${what} ${path} is not valid before ${cert.validFrom} (is this host's clock right?)`);
}

/** The subject's CN, or undefined. */
export function commonName(cert: X509Certificate): string | undefined {
  for (const part of cert.subject.split('\n')) if (part.startsWith('CN=')) return part.slice(3);
  return undefined;
}

function groupOrWorldReadable(path: string): boolean {
  try {
    return (statSync(path).mode & 0o044) !== 0;
  } catch {
    return false;
  }
}

/** Reads and checks what `files` names; '' keys are absent. */
export function loadBrokerCredentials(files: BrokerCredentialFiles, label: KeyLabel): BrokerCredentials {
  const warnings: string[] = [];
  if ((files.cert === '') !== (files.key === '')) {
    const missing = files.cert === '' ? 'cert' : 'key';
    fail(label(missing), `is empty but ${missing === 'cert' ? 'key' : 'cert'} is set: a client certificate needs both its certificate and its key`);
  }
  if (files.password_file !== '' && files.username === '') fail(label('username'), 'is empty but password_file is set: a password needs its username');

  let tls: TlsClientOptions | undefined;
  let identity: string | undefined;
  if (files.ca !== '') {
    const ca = readFile(label('ca'), files.ca, 'CA file');
    for (const c of parseCertificates(label('ca'), files.ca, ca, 'CA file')) {
      checkValidity(label('ca'), files.ca, c, 'CA certificate in');
      if (!c.ca) fail(label('ca'), `CA file ${files.ca} holds '${c.subject.replace(/\n/g, ', ')}', which is not a CA certificate (basicConstraints CA:FALSE): name the federation's ca.crt, not a broker or client certificate`);
    }
    tls = { ca, caFile: files.ca };
  }
  if (files.cert !== '') {
    const certPem = readFile(label('cert'), files.cert, 'certificate');
    const [cert] = parseCertificates(label('cert'), files.cert, certPem, 'certificate');
    checkValidity(label('cert'), files.cert, cert!, 'certificate');
    const keyPem = readFile(label('key'), files.key, 'private key');
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      const encrypted = /ENCRYPTED/.test(keyPem.toString('latin1'));
      fail(label('key'), encrypted ? `private key ${files.key} is encrypted: a service cannot type a passphrase, give it an unencrypted key readable only by its user (mode 0600)` : `${files.key} is not a PEM private key (${(err as Error).message})`, err);
    }
    if (!cert!.checkPrivateKey(key)) fail(label('key'), `private key ${files.key} does not belong to certificate ${files.cert} (${cert!.subject.replace(/\n/g, ', ')}): give the key made with that certificate`);
    if (groupOrWorldReadable(files.key)) warnings.push(`${label('key')}: private key ${files.key} can be read by other users; chmod 0600 it`);
    identity = commonName(cert!);
    tls = { ...(tls ?? {}), cert: certPem, key: keyPem, certFile: files.cert };
  }
  let password: string | undefined;
  if (files.password_file !== '') {
    const text = readFile(label('password_file'), files.password_file, 'password file').toString('utf8');
    password = text.split(/\r?\n/)[0]!;
    if (password === '') fail(label('password_file'), `password file ${files.password_file} is empty: its first line is the password`);
    if (groupOrWorldReadable(files.password_file)) warnings.push(`${label('password_file')}: password file ${files.password_file} can be read by other users; chmod 0600 it`);
  }
  return { tls, username: files.username === '' ? undefined : files.username, password, identity, warnings };
}

/** The embedded broker's server material: its certificate and key, and the CA client certificates must chain to. */
export interface TlsServerMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function loadServerMaterial(files: Pick<BrokerCredentialFiles, 'ca' | 'cert' | 'key'>, label: KeyLabel): { material: TlsServerMaterial; warnings: string[] } {
  if (files.ca === '') fail(label('ca'), 'is empty: a TLS broker checks client certificates against the federation CA (ca.crt from scripts/gen-certs.sh)');
  if (files.cert === '') fail(label('cert'), "is empty: a TLS broker needs its server certificate (broker.crt from scripts/gen-certs.sh)");
  const loaded = loadBrokerCredentials({ ...files, username: '', password_file: '' }, label);
  return { material: { ca: loaded.tls!.ca!, cert: loaded.tls!.cert!, key: loaded.tls!.key! }, warnings: loaded.warnings };
}
