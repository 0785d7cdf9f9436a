/**
 * One pino record (its JSON line, parsed) as one line for people on a terminal:
 * `13:05:42.118 INFO  daemon      ready ring=/var/lib/icosfl/metrics.ring metrics=["cpu_busy_pct"]`
 * time of day (local), level, component, message, then the record's other fields as key=value.
 * Pure, so the format is tested on literal records; log.ts decides when it is used.
 */

const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: 'TRACE', colour: '90' },
  20: { name: 'DEBUG', colour: '36' },
  30: { name: 'INFO', colour: '32' },
  40: { name: 'WARN', colour: '33' },
  50: { name: 'ERROR', colour: '31' },
  60: { name: 'FATAL', colour: '97;41' },
};

/** Fields the line shows in its own columns, or that say nothing on a terminal (pid, pino's v). */
const SHOWN_APART = new Set(['time', 'level', 'msg', 'component', 'pid', 'hostname', 'v']);
/** Components are padded to this width so messages line up for the usual names. */
const COMPONENT_WIDTH = 11;

const paint = (colour: boolean, code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);

function timeOfDay(time: unknown): string {
  const d = new Date(typeof time === 'number' || typeof time === 'string' ? time : Date.now());
  if (Number.isNaN(d.getTime())) return String(time);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Control characters (a newline in a message or a path) never split the record over lines. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** A bare word when it reads unambiguously, else JSON (quoted strings, objects, arrays). */
export function formatFieldValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"'=\x00-\x1f\x7f]+$/.test(v) ? v : JSON.stringify(v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && 'stack' in v) {
    // pino's serialised Error: its type and message; the stack stays in the JSON format.
    const e = v as unknown as { type?: unknown; message: string; code?: unknown };
    const code = e.code === undefined ? '' : ` [${String(e.code)}]`;
    return JSON.stringify(`${typeof e.type === 'string' ? `${e.type}: ` : ''}${e.message}${code}`);
  }
  return oneLine(JSON.stringify(v) ?? String(v));
}

export function formatRecord(record: Record<string, unknown>, colour: boolean): string {
  const level = LEVELS[Number(record.level)] ?? { name: String(record.level ?? '?').toUpperCase(), colour: '0' };
  const component = typeof record.component === 'string' ? record.component : '-';
  const fields = Object.entries(record)
    .filter(([k, v]) => !SHOWN_APART.has(k) && v !== undefined)
    .map(([k, v]) => `${paint(colour, '2', `${k}=`)}${formatFieldValue(v)}`);
  return [
    paint(colour, '2', timeOfDay(record.time)),
    paint(colour, level.colour, level.name.padEnd(5)),
    paint(colour, '1', component.padEnd(COMPONENT_WIDTH)),
    oneLine(typeof record.msg === 'string' ? record.msg : ''),
    ...fields,
  ].join(' ').trimEnd() + '\n';
}
