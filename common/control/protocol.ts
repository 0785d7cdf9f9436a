/**
 * The control socket's wire rules, shared by server.ts and client.ts so both ends agree:
 * one JSON object per line; every answer carries `v` (this version), then
 * `{"ok":true,"result":…}` or `{"ok":false,"error":{"code":…,"message":…}}`.
 * A client that meets another `v`, or an answer of another shape, says so instead of guessing.
 */
export const CONTROL_PROTOCOL_VERSION = 1;

export type ControlReply = { v: number; ok: true; result: unknown } | { v: number; ok: false; error: { code: string; message: string } };

export function okReply(result: unknown): string {
  return JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, ok: true, result });
}

export function errorReply(code: string, message: string): string {
  return JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, ok: false, error: { code, message } });
}

/** Why a line is not an answer of this version, or the answer; `what` names the peer for the message. */
export function parseReply(line: string): { reply: ControlReply } | { mismatch: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { mismatch: `it answered something that is not JSON ('${line.slice(0, 60)}')` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { mismatch: 'its answer is not a JSON object' };
  const r = value as Record<string, unknown>;
  if (r.v !== CONTROL_PROTOCOL_VERSION) {
    return { mismatch: r.v === undefined ? 'its answer has no control protocol version (an older release?)' : `it speaks control protocol v${JSON.stringify(r.v)}, this command v${CONTROL_PROTOCOL_VERSION}` };
  }
  if (r.ok === true && 'result' in r) return { reply: r as ControlReply };
  const e = r.error as Record<string, unknown> | undefined;
  if (r.ok === false && e && typeof e.code === 'string' && typeof e.message === 'string') return { reply: { v: CONTROL_PROTOCOL_VERSION, ok: false, error: { code: e.code, message: e.message } } };
  return { mismatch: 'its answer is not of the control protocol shape ({"v","ok","result"|"error"})' };
}
