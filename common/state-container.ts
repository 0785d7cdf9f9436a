import { createHash } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import type { z } from 'zod';
import { writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
import { IcosflError } from './errors.js';

/**
 * The one file layout of the agent's saved models (trainer/persist.ts, federation/model-file.ts):
 *   8 B magic · u32 LE header length · header JSON (with the body's SHA-256) · body
 * One file, so a rename publishes header and body together. Any bad magic, truncation, malformed
 * header or checksum mismatch is STATE_CORRUPT, named by the caller's `what` and the path.
 */
const PREFIX_BYTES = 12;

export interface ContainerFormat<H extends { sha256: string }> {
  /** 8 ASCII bytes. */
  magic: Buffer;
  /** Names the file in errors, e.g. 'model file'. */
  what: string;
  /** What the header must be; it includes `sha256`. */
  header: z.ZodType<H, z.ZodTypeDef, unknown>;
  /** The body length the header announces, checked before the checksum (a truncation says so). */
  bodyBytes: (header: H) => number;
}

export function stateCorrupt(what: string, path: string, problem: string, cause?: unknown): never {
  throw new IcosflError('STATE_CORRUPT', `${what} ${path}: ${problem}`, { cause, details: { path } });
}

/** Writes header + body atomically (STATE_WRITE_FAILED on a full disk, the previous file intact). */
export function writeContainer(path: string, magic: Buffer, header: Record<string, unknown>, body: readonly Uint8Array[], options: AtomicWriteOptions): void {
  const hash = createHash('sha256');
  for (const p of body) hash.update(p);
  const headerBytes = Buffer.from(JSON.stringify({ ...header, sha256: hash.digest('hex') }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerBytes.length);
  writeFileAtomic(path, [magic, len, headerBytes, ...body], options);
}

/** undefined when the file does not exist; the checked header and the body (checksum verified) otherwise. */
export function readContainer<H extends { sha256: string }>(path: string, format: ContainerFormat<H>): { header: H; body: Buffer } | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const bad = (problem: string, cause?: unknown): never => stateCorrupt(format.what, path, problem, cause);
  if (buf.length < PREFIX_BYTES || !buf.subarray(0, 8).equals(format.magic)) bad(`not an icosfl ${format.what} (bad magic)`);
  const headerLength = buf.readUInt32LE(8);
  if (PREFIX_BYTES + headerLength > buf.length) bad(`truncated header (${headerLength} bytes announced, ${buf.length - PREFIX_BYTES} present)`);
  let header: H;
  try {
    header = format.header.parse(JSON.parse(buf.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength).toString('utf8')));
  } catch (err) {
    bad('malformed header', err);
  }
  const body = buf.subarray(PREFIX_BYTES + headerLength);
  const expected = format.bodyBytes(header!);
  if (body.length !== expected) bad(`body is ${body.length} bytes, the header announces ${expected}`);
  if (createHash('sha256').update(body).digest('hex') !== header!.sha256) bad('checksum mismatch');
  return { header: header!, body };
}

/** A field of a container's header without checking the rest; undefined if absent or unreadable. */
export function peekHeaderField(path: string, magic: Buffer, field: string): unknown {
  try {
    const buf = readFileSync(path);
    if (buf.length < PREFIX_BYTES || !buf.subarray(0, 8).equals(magic)) return undefined;
    return (JSON.parse(buf.subarray(PREFIX_BYTES, PREFIX_BYTES + buf.readUInt32LE(8)).toString('utf8')) as Record<string, unknown>)[field];
  } catch {
    return undefined;
  }
}

/** The one backup of a saved file whose layout the config no longer matches, replaced by the next. */
export const OTHER_LAYOUT_SUFFIX = '.other-layout';

/** Keeps a saved file of another layout as `<path>.other-layout` (replacing an earlier backup); returns where it went. */
export function keepOtherLayout(path: string): string {
  const keptAs = `${path}${OTHER_LAYOUT_SUFFIX}`;
  renameSync(path, keptAs);
  return keptAs;
}

/** Moves a damaged file aside as `<path>.corrupt` (kept for inspection, one, replacing an earlier one). */
export function moveCorruptAside(path: string): string {
  const aside = `${path}.corrupt`;
  renameSync(path, aside);
  return aside;
}
