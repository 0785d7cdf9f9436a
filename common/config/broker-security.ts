/**
 * Secure defaults for a broker connection, one rule for the agent ([federation] broker) and the
 * coordinator ([broker] url): a broker on this host may be plain mqtt://; one elsewhere must be
 * reached over TLS (mqtts://, ssl://, tls://, wss://) unless the config says allow_insecure =
 * true, and then every start logs a warning. TLS files need a TLS URL. Pure: the schemas' checks.
 */
export const TLS_SCHEMES: readonly string[] = ['mqtts:', 'ssl:', 'tls:', 'wss:'];

/** 127.0.0.0/8, ::1 or localhost (a URL's hostname, IPv6 with or without brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

export function usesTls(url: string): boolean {
  const u = parse(url);
  return u !== undefined && TLS_SCHEMES.includes(u.protocol);
}

/** A plain connection to a broker on another host (what allow_insecure lets through, with a warning). */
export function isInsecureRemote(url: string): boolean {
  const u = parse(url);
  return u !== undefined && !TLS_SCHEMES.includes(u.protocol) && !isLoopbackHost(u.hostname);
}

export interface BrokerSecurityKeys {
  /** The URL's key as the user writes it: 'federation.broker', 'broker.url'. */
  urlKey: string;
  /** The section of the TLS keys: 'federation', 'broker'. */
  section: string;
}

/** Why this URL and these keys must not start, or undefined. */
export function brokerSecurityProblem(url: string, tlsFiles: { ca: string; cert: string }, allowInsecure: boolean, keys: BrokerSecurityKeys): { key: string; message: string } | undefined {
  const u = parse(url);
  if (u === undefined) return undefined; // the URL's own check reports it
  const tls = TLS_SCHEMES.includes(u.protocol);
  if (!tls && (tlsFiles.ca !== '' || tlsFiles.cert !== '')) {
    const set = tlsFiles.ca !== '' ? 'ca' : 'cert';
    return { key: keys.urlKey, message: `is ${u.protocol}// but ${keys.section}.${set} is set: TLS needs an mqtts:// URL (e.g. mqtts://${u.host || 'broker.example'}${u.port ? '' : ':8883'})` };
  }
  if (!tls && !isLoopbackHost(u.hostname) && !allowInsecure) {
    return {
      key: keys.urlKey,
      message: `'${u.protocol}//${u.host}' is not on this host and the connection would be unencrypted and unauthenticated: use mqtts:// with ${keys.section}.ca, ${keys.section}.cert and ${keys.section}.key (scripts/gen-certs.sh, docs/tls.md), or set ${keys.section}.allow_insecure = true to accept that risk`,
    };
  }
  return undefined;
}
