import type { AdamConstants, DenseLayout } from '../fused-step.js';

/**
 * WGSL for one fused training step of the dense forecasters (the step of ../fused-step.ts).
 *
 * tfjs runs that step as ~80 small kernels, and on a GPU each kernel is a dispatch whose fixed
 * cost dwarfs its arithmetic (../shared/DESIGN.md: tfjs's GPU path was 13× slower than WASM at
 * small batches). Here the step is two dispatches:
 *
 * 1. `forwardBackward`: one workgroup per batch row computes the hidden activations, the output
 *    error and the error back-propagated to the hidden layer, all in workgroup memory, and writes
 *    the three per-row vectors (plus the row's squared error) to a scratch buffer.
 * 2. `update`: one invocation per weight sums its gradient over the batch's rows, then applies
 *    Adam to it in place. One extra invocation adds the batch's loss to its epoch's total.
 *
 * Dispatches in one compute pass see each other's writes in order, so a whole epoch (and every
 * epoch of a train() call) is encoded into a single submission with no readback in between.
 * The maths is tfjs's: the same loss, gradient (d mean / d y = 2(y − t) / (rows·outputs)), relu
 * derivative (1 where the pre-activation is > 0) and Adam update with bias correction, so a model
 * trained here and one trained by tfjs from the same weights and batch order agree up to float
 * summation order (tested in test/integration/trainer/gpu-dense.test.ts).
 */

/** Workgroup width of both kernels; loops stride by it, so any layer width works. */
export const WORKGROUP = 64;

/**
 * Byte layout of the per-step uniform (one 256-byte slot per step, chosen by dynamic offset):
 * start (u32, first position in the order buffer), count (u32, rows in this batch),
 * epoch (u32, slot of the loss buffer), pad, lr_t (f32, learning rate × bias correction of the
 * first moment), c2 (f32, 1 / (1 − β2^t)).
 */
export const STEP_UNIFORM_BYTES = 256;

const f32 = (x: number) => {
  const s = Math.fround(x).toString();
  return /[.eE]/.test(s) ? s : `${s}.0`;
};

/**
 * Scratch layout (floats), sized for `maxBatch` rows: act [maxBatch × hidden], err [maxBatch × outputs],
 * dh [maxBatch × hidden], sse [maxBatch].
 */
export function scratchLayout(layout: DenseLayout, maxBatch: number) {
  const act = 0;
  const err = act + maxBatch * layout.hidden;
  const dh = err + maxBatch * layout.outputs;
  const sse = dh + maxBatch * layout.hidden;
  return { act, err, dh, sse, size: sse + maxBatch };
}

export function denseStepShader(layout: DenseLayout, maxBatch: number, adam: AdamConstants): string {
  const { inputs: I, outputs: O, hidden: HD } = layout;
  const s = scratchLayout(layout, maxBatch);
  const hasHidden = HD > 0;
  return /* wgsl */ `
struct Step { start: u32, count: u32, epoch: u32, pad: u32, lr_t: f32, c2: f32 }

@group(0) @binding(0) var<storage, read_write> weights: array<f32>;
@group(0) @binding(1) var<storage, read_write> moments: array<f32>;   // m [P] then v [P]
@group(0) @binding(2) var<storage, read> xs: array<f32>;              // [rows × ${I}]
@group(0) @binding(3) var<storage, read> ts: array<f32>;              // [rows × ${O}]
@group(0) @binding(4) var<storage, read> order: array<u32>;           // row order of every epoch
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;    // Σ batch MSE per epoch
@group(0) @binding(7) var<uniform> step: Step;

const I: u32 = ${I}u;
const O: u32 = ${O}u;
const HD: u32 = ${HD}u;
const P: u32 = ${layout.size}u;
const LIN: u32 = ${layout.linearKernel}u;
const W1: u32 = ${layout.hiddenKernel}u;
const B1: u32 = ${layout.hiddenBias}u;
const W2: u32 = ${layout.headKernel}u;
const ACT: u32 = ${s.act}u;
const ERR: u32 = ${s.err}u;
const DH: u32 = ${s.dh}u;
const SSE: u32 = ${s.sse}u;

var<workgroup> x_row: array<f32, ${I}>;
var<workgroup> e_row: array<f32, ${O}>;
${hasHidden ? `var<workgroup> h_row: array<f32, ${HD}>;` : ''}

// Forward pass of one row into workgroup memory: x_row, h_row (hidden activations) and e_row
// (output minus target). Called in uniform control flow by every invocation of a workgroup.
fn forwardRow(row: u32, lid: u32) {
  for (var i = lid; i < I; i += ${WORKGROUP}u) { x_row[i] = xs[row * I + i]; }
  workgroupBarrier();
${hasHidden ? `
  for (var j = lid; j < HD; j += ${WORKGROUP}u) {
    var a = weights[B1 + j];
    for (var i = 0u; i < I; i++) { a += x_row[i] * weights[W1 + i * HD + j]; }
    h_row[j] = max(a, 0.0);
  }
  workgroupBarrier();
` : ''}
  for (var k = lid; k < O; k += ${WORKGROUP}u) {
    var y = 0.0;
    for (var i = 0u; i < I; i++) { y += x_row[i] * weights[LIN + i * O + k]; }
${hasHidden ? `    for (var j = 0u; j < HD; j++) { y += h_row[j] * weights[W2 + j * O + k]; }` : ''}
    e_row[k] = y - ts[row * O + k];
  }
  workgroupBarrier();
}

fn rowSquaredError() -> f32 {
  var sq = 0.0;
  for (var k = 0u; k < O; k++) { sq += e_row[k] * e_row[k]; }
  return sq;
}

@compute @workgroup_size(${WORKGROUP})
fn forwardBackward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x;
  forwardRow(order[step.start + r], lid);
  // d loss / d y for the mean over count × O values.
  let scale = 2.0 / f32(step.count * O);
  for (var k = lid; k < O; k += ${WORKGROUP}u) { scratch[ERR + r * O + k] = e_row[k] * scale; }
  if (lid == 0u) { scratch[SSE + r] = rowSquaredError(); }
${hasHidden ? `
  for (var j = lid; j < HD; j += ${WORKGROUP}u) {
    scratch[ACT + r * HD + j] = h_row[j];
    var g = 0.0;
    if (h_row[j] > 0.0) {
      for (var k = 0u; k < O; k++) { g += e_row[k] * weights[W2 + j * O + k]; }
    }
    scratch[DH + r * HD + j] = g * scale;
  }
` : ''}
}

@compute @workgroup_size(${WORKGROUP})
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.x;
  let n = step.count;
  if (p == P) {
    var sq = 0.0;
    for (var r = 0u; r < n; r++) { sq += scratch[SSE + r]; }
    losses[step.epoch] += sq / f32(n * O);
    return;
  }
  if (p > P) { return; }
  var g = 0.0;
  if (p >= LIN && p < LIN + I * O) {
    let i = (p - LIN) / O;
    let k = (p - LIN) % O;
    for (var r = 0u; r < n; r++) { g += xs[order[step.start + r] * I + i] * scratch[ERR + r * O + k]; }
  }${hasHidden ? ` else if (p >= W1 && p < W1 + I * HD) {
    let i = (p - W1) / HD;
    let j = (p - W1) % HD;
    for (var r = 0u; r < n; r++) { g += xs[order[step.start + r] * I + i] * scratch[DH + r * HD + j]; }
  } else if (p >= B1 && p < B1 + HD) {
    let j = p - B1;
    for (var r = 0u; r < n; r++) { g += scratch[DH + r * HD + j]; }
  } else if (p >= W2 && p < W2 + HD * O) {
    let j = (p - W2) / O;
    let k = (p - W2) % O;
    for (var r = 0u; r < n; r++) { g += scratch[ACT + r * HD + j] * scratch[ERR + r * O + k]; }
  }` : ''}
  // Adam, as tfjs writes it: w -= lr · m̂ / (sqrt(v̂) + ε), m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
  let m = ${f32(adam.beta1)} * moments[p] + ${f32(1 - adam.beta1)} * g;
  let v = ${f32(adam.beta2)} * moments[P + p] + ${f32(1 - adam.beta2)} * g * g;
  moments[p] = m;
  moments[P + p] = v;
  weights[p] -= step.lr_t * m / (sqrt(v * step.c2) + ${f32(adam.epsilon)});
}
`;
}
