import fc from 'fast-check';
import { IcosflError, type ErrorCode } from '../../common/errors.js';

/**
 * Shared pieces of the decoder fuzz tests (test/unit/fuzz/). Every property runs with a fixed
 * seed (FUZZ_SEED overrides it to explore; fast-check prints seed and path on failure, and each
 * file prints the seed it ran with), so a failure replays exactly.
 */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? 0x1c05f1 : Number(process.env.FUZZ_SEED);

/** The input count each decoder gets (issue 21: at least 100,000); FUZZ_RUNS scales it for local exploration. */
export const FUZZ_RUNS = process.env.FUZZ_RUNS === undefined ? 100_000 : Number(process.env.FUZZ_RUNS);

/** A share of FUZZ_RUNS, for a file whose properties split one decoder's inputs between strategies. */
export function runsShare(fraction: number): number {
  return Math.ceil(FUZZ_RUNS * fraction);
}

export function fuzzOptions(numRuns = FUZZ_RUNS): fc.Parameters<unknown> {
  // includeErrorInReport: uvu prints only the message, and the error is what a failure is about.
  return { numRuns, seed: FUZZ_SEED, endOnFailure: true, includeErrorInReport: true };
}

/**
 * Runs `fn` on one hostile input: returning is fine, an IcosflError with one of `codes` is fine,
 * anything else (a TypeError from deep inside, a RangeError, a foreign code) fails the property.
 * Returns the code, or 'accepted'.
 */
export function refusedWith(codes: ReadonlySet<ErrorCode>, fn: () => unknown): ErrorCode | 'accepted' {
  return refusal(codes, fn)?.code ?? 'accepted';
}

/** refusedWith, returning the error itself (undefined when accepted) for its details. */
export function refusal(codes: ReadonlySet<ErrorCode>, fn: () => unknown): IcosflError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof IcosflError && codes.has(err.code)) return err;
    throw new Error(`not an IcosflError with an allowed code (${[...codes].join(', ')}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
}

/** Counts outcomes for the printed tally (so a run that only ever hits one branch shows it). */
export class Tally {
  readonly #counts = new Map<string, number>();
  add(outcome: string): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
  }
  get(outcome: string): number {
    return this.#counts.get(outcome) ?? 0;
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort());
  }
}

/** Edge values for 32-bit length and count fields: zero, one, powers of two and their neighbours, the top. */
export const EDGE_U32 = [0, 1, 2, 3, 63, 64, 65, 255, 4096, 65_535, 65_536, 65_537, 2 ** 24, 2 ** 26, 2 ** 26 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1];

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'u32'; field: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number };

/**
 * Mutations of a valid encoding: bit flips and byte writes anywhere, 32-bit edge values written
 * into the named header fields (offsets), truncation, insertion, deletion. Positions are
 * fractions of the input's length so one arbitrary fits inputs of every size.
 */
export function mutationArb(u32Fields: readonly number[]): fc.Arbitrary<Mutation[]> {
  const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at, value: fc.integer({ min: 0, max: 255 }) }),
    ...(u32Fields.length > 0
      ? [fc.record({ op: fc.constant('u32' as const), field: fc.constantFrom(...u32Fields), value: fc.oneof(fc.constantFrom(...EDGE_U32), fc.nat({ max: 2 ** 32 - 1 })) })]
      : []),
    fc.record({ op: fc.constant('truncate' as const), at }),
    fc.record({ op: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
    fc.record({ op: fc.constant('delete' as const), at, count: fc.integer({ min: 1, max: 32 }) }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: 6 });
}

export function applyMutations(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = base.slice();
  for (const m of mutations) {
    const pos = 'at' in m ? Math.floor(m.at * b.length) : 0;
    if (m.op === 'flip' && b.length > 0) b[pos] = b[pos]! ^ (1 << m.bit);
    else if (m.op === 'set' && b.length > 0) b[pos] = m.value;
    else if (m.op === 'u32' && m.field + 4 <= b.length) new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(m.field, m.value >>> 0, true);
    else if (m.op === 'truncate') b = b.slice(0, pos);
    else if (m.op === 'insert') {
      const out = new Uint8Array(b.length + m.bytes.length);
      out.set(b.subarray(0, pos));
      out.set(m.bytes, pos);
      out.set(b.subarray(pos), pos + m.bytes.length);
      b = out;
    } else if (m.op === 'delete') {
      const tail = b.subarray(Math.min(b.length, pos + m.count));
      const out = new Uint8Array(pos + tail.length);
      out.set(b.subarray(0, pos));
      out.set(tail, pos);
      b = out;
    }
  }
  return b;
}

/** Bytes held in ArrayBuffers now (what a length-field allocation would grow), after a GC where exposed. */
export function arrayBufferBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().arrayBuffers;
}

/** A TOML value of any kind the parser yields, including hostile ones (huge, negative, empty, nested). */
export const tomlValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 0.5, 1e308, Infinity, -Infinity, NaN, '', ' ', '/', '../..', 'x'.repeat(300), 'embedded', 'mqtt://[::1]:99999', true, false, [], {}),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.integer()), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 3 }),
);

/** Structure-aware edits of a parsed config: a key set to a hostile value, a key or section removed or added. */
export type ConfigEdit = { section: string; key: string; value?: unknown; remove?: boolean };

export function configEditsArb(sections: Record<string, string[]>): fc.Arbitrary<ConfigEdit[]> {
  const names = Object.keys(sections);
  const edit = fc.tuple(fc.constantFrom(...names, '__proto__', 'constructor', 'extra'), fc.nat(), fc.oneof(fc.constant(undefined), tomlValueArb), fc.boolean()).map(([section, k, value, remove]) => {
    const keys = Object.hasOwn(sections, section) ? sections[section]! : ['x'];
    const key = [...keys, '__proto__', 'unknown_key'][k % (keys.length + 2)]!;
    return { section, key, value, remove: remove && value === undefined };
  });
  return fc.array(edit, { minLength: 1, maxLength: 4 });
}

export function applyConfigEdits(base: Record<string, Record<string, unknown>>, edits: readonly ConfigEdit[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [s, v] of Object.entries(base)) out[s] = { ...v };
  for (const e of edits) {
    const section = (Object.hasOwn(out, e.section) ? out[e.section] : (out[e.section] = {})) as Record<string, unknown>;
    if (typeof section !== 'object' || section === null) continue;
    if (e.remove) delete section[e.key];
    else if (e.value !== undefined) Object.defineProperty(section, e.key, { value: e.value, enumerable: true, configurable: true, writable: true });
  }
  return out;
}

/** Text mutations of a config file: lines dropped, duplicated or cut, characters inserted. */
export const textEditsArb = fc.array(
  fc.record({ line: fc.nat(), op: fc.constantFrom('drop', 'dup', 'cut', 'insert'), text: fc.constantFrom('[', ']', '=', '"', "'", '\\', '\n', '[[x]]', 'a.b = 1', '= =', '"""', '\u0000', '\uFFFD', '#', '1e999', '0x', 'inf', 'nan', '1979-05-27T07:32:00Z') }),
  { minLength: 1, maxLength: 4 },
);

export function applyTextEdits(text: string, edits: readonly { line: number; op: string; text: string }[]): string {
  const lines = text.split('\n');
  for (const e of edits) {
    const i = e.line % Math.max(1, lines.length);
    const l = lines[i] ?? '';
    if (e.op === 'drop') lines.splice(i, 1);
    else if (e.op === 'dup') lines.splice(i, 0, l);
    else if (e.op === 'cut') lines[i] = l.slice(0, e.line % (l.length + 1));
    else lines[i] = l.slice(0, e.line % (l.length + 1)) + e.text + l.slice(e.line % (l.length + 1));
  }
  return lines.join('\n');
}

/** Random TOML-shaped text: fragments of the grammar in random order. */
export const tomlTextArb = fc
  .array(fc.oneof(fc.constantFrom('[', ']', '[[', ']]', '=', ' = ', '"', "'", '"""', '\n', '.', ',', '{', '}', 'true', '-', '+', '1', '0.5', 'e9', 'nan', 'inf', 'agent', 'sampler', 'trainer', 'federation', 'coordinator', 'broker', 'model', 'metrics', 'interval_ms', 'ring_capacity', 'min_agents', 'url', '__proto__'), fc.string({ maxLength: 4 })), { maxLength: 40 })
  .map((parts) => parts.join(''));
