import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentView } from '../service-status.js';
import type { RoundSummary } from '../round/state.js';
import type { Route } from '../../common/http-server.js';

/**
 * The coordinator's status page on the [http] server: `/` (a static page), `/page.js` and
 * `/page.css` (its script and style, from coordinator/http/page/), uPlot's script and style
 * (from the installed `uplot` package), and `/status.json`, which the page polls. The JSON is
 * built from the same answers as the control socket's `status`, `rounds` and `agents`; the
 * coordinator holds no agent's metric or forecast, so none can appear here.
 */

/** Rounds the page gets (chart and table); the runner keeps up to DEFAULT_TIMING.historyLimit. */
export const PAGE_ROUNDS = 500;

/** What the page needs from the running service, each the control socket's answer of that name. */
export interface StatusPageSource {
  status(): Record<string, unknown>;
  rounds(limit: number): { rounds: RoundSummary[]; total: number };
  agents(): { agents: AgentView[]; presenceTimeoutMs: number };
}

/**
 * Host-local facts of `status` left out of the page: paths and the process id say nothing about
 * the federation, and the page may be reached through a reverse proxy.
 */
const HOST_ONLY = ['pid', 'configFile', 'stateDir', 'socket', 'storage'] as const;

/** The document /status.json serves. */
export function statusDocument(source: StatusPageSource, now: number): Record<string, unknown> {
  const status = { ...source.status() };
  for (const key of HOST_ONLY) delete status[key];
  return { generatedAt: now, status, ...source.rounds(PAGE_ROUNDS), ...source.agents() };
}

/**
 * Same-origin only, and no inline script or style: page.js builds the DOM with textContent, and
 * uPlot styles its elements through the CSSOM, which style-src does not restrict.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** The page's own files: beside the sources (coordinator/http/page/), which the package and install.sh ship as they are. */
export const PAGE_DIR = fileURLToPath(new URL('../../../coordinator/http/page/', import.meta.url));

const PAGE_FILES = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/page.js', 'page.js', 'text/javascript; charset=utf-8'],
  ['/page.css', 'page.css', 'text/css; charset=utf-8'],
] as const;

const UPLOT_FILES = [
  ['/uplot.iife.min.js', 'uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
  ['/uplot.min.css', 'uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'],
] as const;

/** Each static file of the page: its URL path, the file it is read from, its content type. */
export function statusPageFiles(pageDir = PAGE_DIR): { path: string; file: string; type: string }[] {
  // uPlot is resolved as Node resolves an import, so it is found wherever the package's node_modules are.
  const require = createRequire(import.meta.url);
  return [
    ...PAGE_FILES.map(([path, file, type]) => ({ path, file: join(pageDir, file), type })),
    ...UPLOT_FILES.map(([path, spec, type]) => ({ path, file: resolveModule(require, spec), type })),
  ];
}

function resolveModule(require: NodeJS.Require, spec: string): string {
  try {
    return require.resolve(spec);
  } catch (cause) {
    throw new Error(`the status page's ${spec} is not installed (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); reinstall icosfl, or set http.enabled = false`, { cause });
  }
}

function readAsset(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    // A package without them is broken, not misconfigured: exit 70 at start, not a 404 later.
    throw new Error(`the status page's file ${path} is missing or unreadable (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); reinstall icosfl, or set http.enabled = false`, { cause });
  }
}

function staticRoute(body: Buffer, type: string): Route {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS }).end(body);
  };
}

/** The page's routes; every file is read here, once, so a broken install fails the start. */
export function statusPageRoutes(source: StatusPageSource, pageDir = PAGE_DIR): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const { path, file, type } of statusPageFiles(pageDir)) routes.set(path, staticRoute(readAsset(file), type));
  routes.set('/status.json', (_req, res) => {
    const body = JSON.stringify(statusDocument(source, Date.now()));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS }).end(body);
  });
  return routes;
}
