import { readFileSync } from 'node:fs';

/**
 * What `<program> version` (and `--version`) reports: the package, the running node and its
 * Node-API, and every format this build reads and writes, so two installs can be compared before
 * they are made to talk (a federation needs one protocol and one CKKS wire version; a ring file
 * one format). The addon's part comes from native/ (common/ may not import it): each CLI passes it.
 */
export interface AddonInfo {
  /** The .node file loaded (or tried). */
  path: string;
  /** NAPI_VERSION it was compiled against; null when unknown. */
  napiVersion: number | null;
  /** The ring file format version it reads and writes; null when the addon did not load. */
  ringFormatVersion: number | null;
  /** Why it did not load; null when it did. */
  error: string | null;
}

export interface VersionReport {
  program: string;
  version: string;
  node: string;
  /** Node-API: the running node's, and the one the addon was built for. */
  napi: { node: number; addon: number | null };
  addon: { path: string; loaded: boolean; error: string | null };
  ring_format: number | null;
  protocol: number;
  ckks_wire: number;
}

/**
 * The version is read from package.json at run time, beside the compiled tree
 * (dist/common/version.js → ../../package.json), so an installed package reports what it is. The
 * protocol and wire modules load only here (they pull in zod).
 */
export async function versionReport(program: string, addon: () => Promise<AddonInfo>): Promise<VersionReport> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  const { PROTOCOL_VERSION } = await import('./protocol/messages.js');
  const { WIRE_VERSION } = await import('./crypto/wire.js');
  const a = await addon();
  return {
    program,
    version: String(pkg.version),
    node: process.versions.node,
    napi: { node: Number(process.versions.napi), addon: a.napiVersion },
    addon: { path: a.path, loaded: a.error === null, error: a.error },
    ring_format: a.ringFormatVersion,
    protocol: PROTOCOL_VERSION,
    ckks_wire: WIRE_VERSION,
  };
}

/** The first line is the one-line summary scripts read; then one line per version. */
export function formatVersionReport(r: VersionReport): string {
  const addon = r.addon.loaded ? `built for Node-API ${r.napi.addon ?? 'unknown (rebuild it to report this)'} (${r.addon.path})` : `not loaded: ${r.addon.error} (${r.addon.path})`;
  const rows: [string, string][] = [
    ['package', `icosfl ${r.version}`],
    ['node', `${r.node}, Node-API ${r.napi.node}`],
    ['native addon', addon],
    ['ring file format', r.ring_format === null ? 'unknown (needs the native addon)' : String(r.ring_format)],
    ['federation protocol', String(r.protocol)],
    ['CKKS wire format', String(r.ckks_wire)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return `${r.program} ${r.version} (protocol v${r.protocol}, node ${r.node})\n${rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n')}\n`;
}
