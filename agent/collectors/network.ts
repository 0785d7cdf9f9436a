import { join } from 'node:path';
import { counterRate } from './counter-rate.js';
import { ProcFile } from './proc-file.js';
import { malformed } from './read-source.js';
import type { CollectorSource } from './types.js';

export interface InterfaceBytes {
  rx: number;
  tx: number;
}

/**
 * Parses /proc/net/dev: two header lines, then `iface: rx_bytes rx_packets … (8 receive fields)
 * tx_bytes …`. Old kernels print no space after the colon, so split on it rather than on blanks.
 */
export function parseNetDev(text: string): Map<string, InterfaceBytes> {
  const out = new Map<string, InterfaceBytes>();
  const lines = text.split('\n');
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    const rx = Number(fields[0]);
    const tx = Number(fields[8]);
    if (fields.length < 16 || !Number.isFinite(rx) || !Number.isFinite(tx)) {
      throw malformed('network', `/proc/net/dev line ${i + 1}`, '16 numeric counters after the interface name');
    }
    out.set(line.slice(0, colon).trim(), { rx, tx });
  }
  return out;
}

/**
 * Summed rx/tx bytes/s between two readings over interfaces present in both and not excluded.
 * A new interface contributes from its second reading on; a counter that went backwards on any
 * interface makes the whole sample NaN (a reset, see counter-rate.ts).
 */
export function networkRates(
  prev: Map<string, InterfaceBytes> | undefined,
  cur: Map<string, InterfaceBytes>,
  elapsedMs: number,
  exclude: RegExp,
): { rx: number; tx: number } {
  if (prev === undefined) return { rx: NaN, tx: NaN };
  let rx = 0;
  let tx = 0;
  for (const [name, c] of cur) {
    const p = prev.get(name);
    if (p === undefined || exclude.test(name)) continue;
    rx += counterRate(p.rx, c.rx, elapsedMs);
    tx += counterRate(p.tx, c.tx, elapsedMs);
  }
  return { rx, tx };
}

/**
 * Only the loopback is excluded by default: virtual interfaces (bridges, bonds, ifb, veth) may
 * count the same bytes twice, but which ones do depends on the host, so that is configurable.
 */
export const DEFAULT_EXCLUDED_INTERFACES = /^lo$/;

/** A config file gives the pattern as a string; it is matched against whole interface names. */
function toRegExp(pattern: unknown): RegExp {
  if (pattern instanceof RegExp) return pattern;
  if (typeof pattern !== 'string') throw new TypeError('network.excludeInterfaces must be a RegExp or a pattern string');
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (cause) {
    throw new RangeError(`network.excludeInterfaces: "${pattern}" is not a valid regular expression`, { cause });
  }
}

export const networkSource: CollectorSource = {
  name: 'network',
  defaultEnabled: true,
  metrics: {
    net_rx_bytes_per_s: { unit: 'bytes/s', help: 'Bytes received per second, summed over non-excluded interfaces (default: all but lo)' },
    net_tx_bytes_per_s: { unit: 'bytes/s', help: 'Bytes sent per second, summed over non-excluded interfaces (default: all but lo)' },
  },
  create(ctx) {
    const exclude = toRegExp(ctx.options.network?.excludeInterfaces ?? DEFAULT_EXCLUDED_INTERFACES);
    const file = new ProcFile('network', join(ctx.procRoot, 'net', 'dev'));
    let prev: Map<string, InterfaceBytes> | undefined;
    let prevAt = 0;
    return {
      name: 'network',
      metrics: ['net_rx_bytes_per_s', 'net_tx_bytes_per_s'],
      async collect() {
        const cur = parseNetDev(file.read());
        const now = ctx.clock();
        const r = networkRates(prev, cur, now - prevAt, exclude);
        prev = cur;
        prevAt = now;
        return { net_rx_bytes_per_s: r.rx, net_tx_bytes_per_s: r.tx };
      },
      close() {
        file.close();
      },
    };
  },
};
