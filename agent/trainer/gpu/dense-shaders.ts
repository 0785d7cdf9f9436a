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
 *    the three per-row vectors, the row's inputs and its squared error to a scratch buffer.
 * 2. `update`: one workgroup per UPDATE_WEIGHTS weights sums their gradients over the batch's
 *    rows, each invocation a share of the rows and a tree in workgroup memory adding the shares,
 *    then applies Adam to them in place. The loss is one more "weight" (index P): its sum over
 *    the rows is added to its epoch's total.
 *
 *    The first version gave each weight one invocation that looped over all the batch's rows,
 *    a serial chain of dependent global reads, and on an H100 its speed hardly moved with batch
 *    size or width (288 k samples/s at batch 256, 350 k at 4,096, 232 k at 512 hidden units).
 *    Spread over a workgroup, the default job went from 786 k to 1.43–2.34 M samples/s
 *    (`npm run bench -- train`, same H100); `npm run bench -- gpu-step` splits a step's time.
 *    Since then its reads are coalesced as well (see scratchLayout).
 *
 * Dispatches in one compute pass see each other's writes in order, so a whole epoch (and every
 * epoch of a train() call) is encoded into a single submission with no readback in between.
 * The maths is tfjs's: the same loss, gradient (d mean / d y = 2(y − t) / (rows·outputs)), relu
 * derivative (1 where the pre-activation is > 0) and Adam update with bias correction, so a model
 * trained here and one trained by tfjs from the same weights and batch order agree up to float
 * summation order (tested in test/integration/trainer/gpu-dense.test.ts).
 */

/** Workgroup width of forwardBackward; its loops stride by it, so any layer width works. */
export const WORKGROUP = 64;

/** update: invocations per workgroup (they split the batch's rows) and weights per workgroup. */
export const UPDATE_WORKGROUP = 256;
export const UPDATE_WEIGHTS = 4;

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
 * Scratch layout (floats), sized for `maxBatch` rows, each array unit-major ([unit × maxBatch]:
 * one unit's values for consecutive batch rows are adjacent): act [hidden], err [outputs],
 * dh [hidden], x [inputs] (the batch's input rows, gathered), then sse [maxBatch].
 *
 * Unit-major because `update` reads every value once per weight that uses it, while
 * forwardBackward writes it once: neighbouring invocations of update sum neighbouring rows, so
 * their reads fall in the same memory transactions. Row-major, with x read from the data by the
 * shuffled order, each read was its own transaction, and update took 83 µs of a 93–108 µs step at
 * batch 4,096 on an H100 (`npm run bench -- gpu-step`).
 */
export function scratchLayout(layout: DenseLayout, maxBatch: number) {
  const act = 0;
  const err = act + maxBatch * layout.hidden;
  const dh = err + maxBatch * layout.outputs;
  const x = dh + maxBatch * layout.hidden;
  const sse = x + maxBatch * layout.inputs;
  return { act, err, dh, x, sse, size: sse + maxBatch };
}

/**
 * Workgroup floats forwardBackward spends on the output sums: one share per output and invocation
 * for a layer wide enough to need them (inputs + hidden units ≥ SHARED_OUTPUTS_FROM) with at most
 * MAX_SHARED_OUTPUTS outputs, while they fit the device's workgroup memory beside the row;
 * else none, and one invocation per output loops over every input and hidden unit itself.
 *
 * That loop leaves all but O invocations of the workgroup idle. With 512 hidden units its serial
 * chain was most of the step: forwardBackward took 83–85 µs on an H100, against 18–31 µs with
 * the shares (3 alternated runs of `npm run bench -- gpu-step`). With the default job's 64 hidden
 * units and 30 inputs the loop was faster (11–15 µs against 16 µs): the tree costs 7 barriers.
 * The crossover lies between 94 and 542 summed terms; 256 splits that range.
 */
export const MAX_SHARED_OUTPUTS = 16;
export const SHARED_OUTPUTS_FROM = 256;
export function sharedOutputs(layout: DenseLayout, maxWorkgroupBytes: number): number {
  const { inputs: I, outputs: O, hidden: HD } = layout;
  const wide = I + HD >= SHARED_OUTPUTS_FROM;
  const fits = 4 * (I + O + HD + O * WORKGROUP) <= maxWorkgroupBytes;
  return wide && O <= MAX_SHARED_OUTPUTS && fits ? O * WORKGROUP : 0;
}

export function denseStepShader(layout: DenseLayout, maxBatch: number, adam: AdamConstants, maxWorkgroupBytes: number): string {
  const { inputs: I, outputs: O, hidden: HD } = layout;
  const s = scratchLayout(layout, maxBatch);
  const hasHidden = HD > 0;
  const shares = sharedOutputs(layout, maxWorkgroupBytes);
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
const XT: u32 = ${s.x}u;
const SSE: u32 = ${s.sse}u;
const MB: u32 = ${maxBatch}u;   // the stride of the scratch arrays (unit-major)

var<workgroup> x_row: array<f32, ${I}>;
var<workgroup> e_row: array<f32, ${O}>;
${hasHidden ? `var<workgroup> h_row: array<f32, ${HD}>;` : ''}
${shares ? `var<workgroup> shares: array<f32, ${shares}>;` : ''}

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
${shares ? `
  // Every output is a sum over the inputs and hidden units: each invocation sums a strided share
  // for all outputs at once and one tree over the workgroup adds the shares up.
  var y = array<f32, ${O}>();
  for (var i = lid; i < I; i += ${WORKGROUP}u) {
    for (var k = 0u; k < O; k++) { y[k] += x_row[i] * weights[LIN + i * O + k]; }
  }
${hasHidden ? `  for (var j = lid; j < HD; j += ${WORKGROUP}u) {
    for (var k = 0u; k < O; k++) { y[k] += h_row[j] * weights[W2 + j * O + k]; }
  }` : ''}
  for (var k = 0u; k < O; k++) { shares[k * ${WORKGROUP}u + lid] = y[k]; }
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half /= 2u) {
    if (lid < half) {
      for (var k = 0u; k < O; k++) { shares[k * ${WORKGROUP}u + lid] += shares[k * ${WORKGROUP}u + lid + half]; }
    }
    workgroupBarrier();
  }
  for (var k = lid; k < O; k += ${WORKGROUP}u) { e_row[k] = shares[k * ${WORKGROUP}u] - ts[row * O + k]; }
` : `
  for (var k = lid; k < O; k += ${WORKGROUP}u) {
    var y = 0.0;
    for (var i = 0u; i < I; i++) { y += x_row[i] * weights[LIN + i * O + k]; }
${hasHidden ? `    for (var j = 0u; j < HD; j++) { y += h_row[j] * weights[W2 + j * O + k]; }` : ''}
    e_row[k] = y - ts[row * O + k];
  }
`}  workgroupBarrier();
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
  for (var k = lid; k < O; k += ${WORKGROUP}u) { scratch[ERR + k * MB + r] = e_row[k] * scale; }
  for (var i = lid; i < I; i += ${WORKGROUP}u) { scratch[XT + i * MB + r] = x_row[i]; }
  if (lid == 0u) { scratch[SSE + r] = rowSquaredError(); }
${hasHidden ? `
  for (var j = lid; j < HD; j += ${WORKGROUP}u) {
    scratch[ACT + j * MB + r] = h_row[j];
    var g = 0.0;
    if (h_row[j] > 0.0) {
      for (var k = 0u; k < O; k++) { g += e_row[k] * weights[W2 + j * O + k]; }
    }
    scratch[DH + j * MB + r] = g * scale;
  }
` : ''}
}

// Batch row r's term in the gradient of weight p; p == P stands for the loss.
fn gradientTerm(p: u32, r: u32) -> f32 {
  if (p >= LIN && p < LIN + I * O) {
    return scratch[XT + ((p - LIN) / O) * MB + r] * scratch[ERR + ((p - LIN) % O) * MB + r];
  }${hasHidden ? `
  if (p >= W1 && p < W1 + I * HD) {
    return scratch[XT + ((p - W1) / HD) * MB + r] * scratch[DH + ((p - W1) % HD) * MB + r];
  }
  if (p >= B1 && p < B1 + HD) {
    return scratch[DH + (p - B1) * MB + r];
  }
  if (p >= W2 && p < W2 + HD * O) {
    return scratch[ACT + ((p - W2) / O) * MB + r] * scratch[ERR + ((p - W2) % O) * MB + r];
  }` : ''}
  if (p == P) { return scratch[SSE + r]; }
  return 0.0;
}

var<workgroup> partial: array<f32, ${UPDATE_WEIGHTS * UPDATE_WORKGROUP}>;

@compute @workgroup_size(${UPDATE_WORKGROUP})
fn update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  const G: u32 = ${UPDATE_WEIGHTS}u;
  const R: u32 = ${UPDATE_WORKGROUP}u;
  let n = step.count;
  let p0 = (wg.y * groups.x + wg.x) * G;
  // Each invocation sums its share of the batch's rows for the workgroup's G weights...
  var acc = array<f32, ${UPDATE_WEIGHTS}>();
  for (var r = lid; r < n; r += R) {
    for (var g = 0u; g < G; g++) { acc[g] += gradientTerm(p0 + g, r); }
  }
  for (var g = 0u; g < G; g++) { partial[g * R + lid] = acc[g]; }
  workgroupBarrier();
  // ...and a tree over the workgroup adds the shares up.
  for (var half = R / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      for (var g = 0u; g < G; g++) { partial[g * R + lid] += partial[g * R + lid + half]; }
    }
    workgroupBarrier();
  }
  if (lid >= G) { return; }
  let p = p0 + lid;
  let g = partial[lid * R];
  if (p == P) {
    losses[step.epoch] += g / f32(n * O);
    return;
  }
  if (p > P) { return; }
  // Adam, as tfjs writes it: w -= lr · m̂ / (sqrt(v̂) + ε), m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
  let m = ${f32(adam.beta1)} * moments[p] + ${f32(1 - adam.beta1)} * g;
  let v = ${f32(adam.beta2)} * moments[P + p] + ${f32(1 - adam.beta2)} * g * g;
  moments[p] = m;
  moments[P + p] = v;
  weights[p] -= step.lr_t * m / (sqrt(v * step.c2) + ${f32(adam.epsilon)});
}
`;
}
