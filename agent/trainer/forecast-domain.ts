import { Counter, type Registry } from 'prom-client';
import { METRICS } from '../collectors/index.js';

/**
 * Forecasts as users see them (the icosfl_forecast gauges, `icosfl-agent predict`) stay inside
 * each metric's domain from the collector catalogue: a model that extrapolates a falling rate
 * below zero or a busy CPU above 100 % is shown at the bound. Training and its validation
 * losses see the raw outputs; only what is published is clamped, and how often is counted.
 */

/** Per metric, the steps ahead (0-based) whose value was clamped; metrics with none are absent. */
export type ClampedSteps = Record<string, number[]>;

/**
 * Clamps `values` (laid out [step][metric], as Forecaster.predict returns them) in place; a
 * metric outside the catalogue (a replayed column of another name) is left as it is.
 */
export function clampForecast(values: Float32Array, metrics: readonly string[]): ClampedSteps {
  const C = metrics.length;
  const moved: ClampedSteps = {};
  for (let c = 0; c < C; c++) {
    const domain = METRICS[metrics[c]!]?.domain;
    if (!domain) continue;
    for (let i = c; i < values.length; i += C) {
      const v = values[i]!;
      // Written so that NaN (not known) is left alone.
      if (!(v < domain.min || v > domain.max)) continue;
      values[i] = v < domain.min ? domain.min : domain.max;
      (moved[metrics[c]!] ??= []).push((i - c) / C);
    }
  }
  return moved;
}

/** How many values each metric had clamped within the first `steps` steps (metrics with none omitted). */
export function clampedWithin(moved: ClampedSteps, steps: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [metric, at] of Object.entries(moved)) {
    const n = at.filter((s) => s < steps).length;
    if (n > 0) out[metric] = n;
  }
  return out;
}

/** The daemon's count of published forecast values moved into their domain, by metric. */
export function clampCounter(registry: Registry): Counter<'metric'> {
  return new Counter({
    name: 'icosfl_forecast_clamped_total',
    help: "Forecast values moved into their metric's domain (below 0, a percentage above 100) before the gauges or a predict answer showed them",
    labelNames: ['metric'],
    registers: [registry],
  });
}

export function countClamped(counter: Counter<'metric'>, moved: Record<string, number>): void {
  for (const [metric, n] of Object.entries(moved)) counter.inc({ metric }, n);
}
