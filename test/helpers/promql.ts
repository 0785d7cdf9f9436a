import { readFileSync } from 'node:fs';

/**
 * What the monitoring tests read of PromQL and of the shipped rules and dashboard: the metric
 * names an expression selects (so a renamed metric breaks the build), the alert rules of
 * deploy/prometheus/icosfl-rules.yml and the targets of deploy/grafana/icosfl-dashboard.json.
 */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'start', 'end']);

/** Grafana's template variables ($metric, ${step}, $__rate_interval) replaced by what a query needs there. */
export function expandGrafanaVariables(expr: string, values: Record<string, string> = {}): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (name in values) return values[name]!;
    if (name === '__rate_interval' || name === '__interval' || name === '__range') return '5m';
    throw new Error(`no value for the Grafana variable $${name} in: ${expr}`);
  });
}

/** The metric names a PromQL expression selects: every identifier that is not a function, keyword, label or duration. */
export function metricNames(expr: string): string[] {
  if (expr.includes('$')) throw new Error(`expand Grafana variables first: ${expr}`);
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{[^{}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names].sort();
}

export interface AlertRule {
  alert: string;
  expr: string;
}

/**
 * The alert rules of a rules file in the layout the shipped one keeps (`- alert: NAME` then a
 * one-line `expr:`); any other layout is an error here rather than a rule silently not read.
 */
export function alertRules(path: string): AlertRule[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: AlertRule[] = [];
  for (let i = 0; i < lines.length; i++) {
    const a = /^\s*- alert:\s*(\S+)\s*$/.exec(lines[i]!);
    if (!a) {
      if (/^\s*-?\s*record:/.test(lines[i]!)) throw new Error(`${path}:${i + 1}: recording rules are not read here`);
      continue;
    }
    const e = /^\s*expr:\s*(.+)$/.exec(lines[i + 1] ?? '');
    if (!e || /^[|>]/.test(e[1]!)) throw new Error(`${path}:${i + 2}: the line after '- alert: ${a[1]}' must be a one-line expr`);
    out.push({ alert: a[1]!, expr: e[1]!.trim() });
  }
  return out;
}

export interface DashboardTarget {
  panel: string;
  expr: string;
}

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Every Prometheus target of a Grafana dashboard, rows' nested panels included. */
export function dashboardTargets(dashboard: { panels?: Panel[] }): DashboardTarget[] {
  const out: DashboardTarget[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push({ panel: p.title ?? '(untitled)', expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}
