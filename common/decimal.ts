/**
 * The one number parser for data files (simulate's CSVs, the converters, the agent's replay
 * file). JavaScript's Number() reads '0x10' as 16, '' and ' ' as 0, 'Infinity' as a number and
 * '1e400' as Infinity; a trace cell is none of those, so only plain decimal notation is accepted
 * and a failure says which rule the cell broke. Callers decide what an empty cell means (a
 * missing sample, or an error) before they call this, and add the file and line.
 */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** The largest finite float32: the ring and the trainer store samples as float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

export type DecimalCell = { ok: true; value: number } | { ok: false; reason: string };

/**
 * `text` (surrounding spaces ignored) as a finite number. `range` 'float32' (samples) also
 * refuses magnitudes that float32 cannot hold, so a value is never stored as ±Inf, NaN or 0
 * when the file said otherwise; 'float64' is for timestamps.
 */
export function parseDecimal(text: string, range: 'float32' | 'float64' = 'float32'): DecimalCell {
  const cell = text.trim();
  if (cell === '') return { ok: false, reason: 'is empty' };
  if (!DECIMAL.test(cell)) return { ok: false, reason: notDecimalReason(cell) };
  const value = Number(cell);
  // Math.fround is what storing in a Float32Array does: exactly the values it turns to ±Inf or 0.
  const stored = range === 'float32' ? Math.fround(value) : value;
  if (!Number.isFinite(stored)) return { ok: false, reason: `is beyond the ${range} range (±${(range === 'float32' ? FLOAT32_MAX : Number.MAX_VALUE).toPrecision(3)})` };
  if (stored === 0 && /[1-9]/.test(cell.replace(/[eE].*$/, ''))) return { ok: false, reason: `is too close to 0 for ${range} and would be stored as 0` };
  return { ok: true, value };
}

/** Why a non-empty cell is not plain decimal notation, for the error message. */
function notDecimalReason(cell: string): string {
  if (/^[+-]?0[xXbBoO]/.test(cell)) return 'is not decimal notation (hexadecimal, binary or octal prefix); write the value in decimal';
  if (/^[+-]?(nan|inf|infinity)$/i.test(cell)) return 'is not a finite number';
  if (/^[+-]?\d{1,3}([,_' \u00a0]\d{3})+(\.\d*)?$/.test(cell)) return 'has a thousands separator; write the digits without one (1234.5)';
  if (/^[+-]?\d+,\d+$/.test(cell)) return 'has a decimal comma; write a decimal point (1.5)';
  return 'is not a number in decimal notation';
}
