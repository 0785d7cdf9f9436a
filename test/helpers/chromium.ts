import { runBounded, type RunResult } from './run-bounded.js';
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from './paths.js';

/**
 * Debian's headless chromium for the tests that look at a page or a picture: each run gets its
 * own temporary profile (--user-data-dir) and is killed after `timeoutMs`. A missing chromium
 * fails the test that needs it (CI installs it: .ci/run), it never skips.
 */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Where tests leave pictures for people to look at (ignored by git). */
export const TEST_OUTPUT = join(REPO_ROOT, 'test-output');

export function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is not installed or not executable: this test needs Debian's chromium (apt-get install chromium; CHROMIUM=PATH names another)`);
  }
}

export interface ChromiumOptions {
  /** Virtual time the page may run for (its timers and fetches) before the DOM is taken. */
  budgetMs?: number;
  timeoutMs?: number;
  windowSize?: [number, number];
}

async function run(args: string[], timeoutMs: number): Promise<RunResult> {
  const profile = tempDir('icosfl-chromium-');
  try {
    return await runBounded(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', `--user-data-dir=${profile.dir}`, ...args], timeoutMs);
  } finally {
    profile.cleanup();
  }
}

/** The DOM after the page's scripts ran (chromium --dump-dom). */
export async function dumpDom(url: string, o: ChromiumOptions = {}): Promise<string> {
  const size = o.windowSize ?? [1280, 1000];
  const r = await run([`--virtual-time-budget=${o.budgetMs ?? 4000}`, `--window-size=${size[0]},${size[1]}`, '--dump-dom', url], o.timeoutMs ?? 60_000);
  if (r.code !== 0 || r.stdout.trim() === '') throw new Error(`chromium --dump-dom ${url} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A PNG of the page (chromium --screenshot) at `file`; returns its bytes. */
export async function screenshot(url: string, file: string, o: ChromiumOptions = {}): Promise<Buffer> {
  const size = o.windowSize ?? [1280, 1000];
  mkdirSync(join(file, '..'), { recursive: true });
  const r = await run([`--virtual-time-budget=${o.budgetMs ?? 4000}`, '--hide-scrollbars', `--window-size=${size[0]},${size[1]}`, `--screenshot=${file}`, url], o.timeoutMs ?? 60_000);
  if (r.code !== 0) throw new Error(`chromium --screenshot ${url} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return readFileSync(file);
}

/** PNG files start with these 8 bytes; the IHDR chunk then holds width and height. */
export function pngSize(png: Buffer): { width: number; height: number } {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (png.length < 24 || !png.subarray(0, 8).equals(signature)) throw new Error('not a PNG file');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
