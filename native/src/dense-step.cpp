#include "dense-step.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

namespace icosfl {

namespace {

// Rows per tile of the forward and backward passes. Each weight (of W1, and of its gradient) is
// loaded once per tile instead of once per row. Measured on this 2-core VM (the default model,
// 6,000 rows, best of 20 by CPU time; the VM is noisy, so three runs each): 1 row 264–421 k rows/s,
// 2: 367–377 k, 4: 408–584 k, 8: 396–514 k. AVX2 (-mavx2 -mfma) added about 10 %, not enough to
// give up one portable build for per-CPU clones.
constexpr uint32_t TILE = 4;
// Hidden units per register block of the forward pass: TILE × JB floats of sums = 16 SSE registers.
constexpr uint32_t JB = 16;

// [offset, offset + count) lies inside [0, size).
bool inside(uint64_t offset, uint64_t count, uint64_t size) { return offset + count <= size; }

}  // namespace

DenseTrainer::DenseTrainer(const DenseLayout& layout, const AdamConstants& adam) : layout_(layout), adam_(adam) {
  const DenseLayout& L = layout;
  if (L.inputs == 0 || L.outputs == 0) throw DenseStepError("dense layout needs at least one input and one output");
  if (L.size == 0 || !inside(L.linearKernel, uint64_t(L.inputs) * L.outputs, L.size)) {
    throw DenseStepError("dense layout: the linear kernel does not fit in " + std::to_string(L.size) + " weights");
  }
  if (L.hidden > 0 && (!inside(L.hiddenKernel, uint64_t(L.inputs) * L.hidden, L.size) || !inside(L.hiddenBias, L.hidden, L.size) ||
                       !inside(L.headKernel, uint64_t(L.hidden) * L.outputs, L.size))) {
    throw DenseStepError("dense layout: a hidden-layer matrix does not fit in " + std::to_string(L.size) + " weights");
  }
  if (L.hidden > 0) {
    // Disjoint blocks: tile() reads and writes them through __restrict pointers.
    struct Block {
      uint64_t offset, count;
    };
    Block blocks[] = {{L.linearKernel, uint64_t(L.inputs) * L.outputs},
                      {L.hiddenKernel, uint64_t(L.inputs) * L.hidden},
                      {L.hiddenBias, L.hidden},
                      {L.headKernel, uint64_t(L.hidden) * L.outputs}};
    std::sort(std::begin(blocks), std::end(blocks), [](const Block& a, const Block& b) { return a.offset < b.offset; });
    for (int k = 1; k < 4; k++) {
      if (blocks[k - 1].offset + blocks[k - 1].count > blocks[k].offset) throw DenseStepError("dense layout: weight blocks overlap");
    }
  }
  if (!(adam.beta1 >= 0 && adam.beta1 < 1 && adam.beta2 >= 0 && adam.beta2 < 1 && adam.epsilon > 0)) {
    throw DenseStepError("Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0");
  }
}

void DenseTrainer::allocateTrainingState() {
  if (!grad_.empty()) return;
  const DenseLayout& L = layout_;
  m_.assign(L.size, 0.0f);
  v_.assign(L.size, 0.0f);
  grad_.assign(L.size, 0.0f);
  hidden_.assign(std::size_t(TILE) * L.hidden, 0.0f);
  error_.assign(std::size_t(TILE) * L.outputs, 0.0f);
  hiddenError_.assign(std::size_t(TILE) * L.hidden, 0.0f);
}

void DenseTrainer::resetOptimizer() {
  std::fill(m_.begin(), m_.end(), 0.0f);
  std::fill(v_.begin(), v_.end(), 0.0f);
  adamStep_ = 0;
}

void DenseTrainer::checkJob(std::size_t weightCount, const DenseTrainJob& job, std::size_t xCount, std::size_t tCount,
                            std::size_t orderCount) const {
  const DenseLayout& L = layout_;
  if (weightCount != L.size) {
    throw DenseStepError("weights have " + std::to_string(weightCount) + " values, the layout needs " + std::to_string(L.size));
  }
  if (job.rows == 0 || job.epochs == 0 || job.batchSize == 0) throw DenseStepError("rows, epochs and batchSize must be positive");
  if (!(job.learningRate > 0 && std::isfinite(job.learningRate))) throw DenseStepError("learningRate must be a positive finite number");
  if (xCount != uint64_t(job.rows) * L.inputs || tCount != uint64_t(job.rows) * L.outputs ||
      orderCount != uint64_t(job.rows) * job.epochs) {
    throw DenseStepError("train input sizes do not match " + std::to_string(job.rows) + " rows × " + std::to_string(L.inputs) +
                         " inputs → " + std::to_string(L.outputs) + " outputs over " + std::to_string(job.epochs) + " epochs");
  }
  for (std::size_t k = 0; k < orderCount; k++) {
    if (job.order[k] >= job.rows) {
      throw DenseStepError("order[" + std::to_string(k) + "] = " + std::to_string(job.order[k]) + " is not a row index below " +
                           std::to_string(job.rows));
    }
  }
}

std::vector<double> DenseTrainer::train(float* weights, std::size_t weightCount, const DenseTrainJob& job) {
  checkJob(weightCount, job, std::size_t(job.rows) * layout_.inputs, std::size_t(job.rows) * layout_.outputs,
           std::size_t(job.rows) * job.epochs);
  allocateTrainingState();
  const uint32_t batch = std::min(job.batchSize, job.rows);
  const uint32_t stepsPerEpoch = (job.rows + batch - 1) / batch;
  std::vector<double> epochLosses(job.epochs, 0.0);
  for (uint32_t e = 0; e < job.epochs; e++) {
    const uint32_t* order = job.order + std::size_t(e) * job.rows;
    double sum = 0;
    for (uint32_t start = 0; start < job.rows; start += batch) sum += step(weights, job, order + start, std::min(batch, job.rows - start));
    epochLosses[e] = sum / stepsPerEpoch;
  }
  return epochLosses;
}

std::vector<float> DenseTrainer::forward(const float* w, std::size_t weightCount, const float* x, std::size_t xCount,
                                         uint32_t rows) const {
  const DenseLayout& L = layout_;
  const uint32_t I = L.inputs, O = L.outputs, HD = L.hidden;
  if (weightCount != L.size) {
    throw DenseStepError("weights have " + std::to_string(weightCount) + " values, the layout needs " + std::to_string(L.size));
  }
  if (rows == 0 || xCount != uint64_t(rows) * I) {
    throw DenseStepError("x has " + std::to_string(xCount) + " values, not " + std::to_string(rows) + " rows × " + std::to_string(I) +
                         " inputs (rows > 0)");
  }
  const float* Wlin = w + L.linearKernel;
  const float* W1 = w + L.hiddenKernel;
  const float* b1 = w + L.hiddenBias;
  const float* W2 = w + L.headKernel;
  std::vector<float> y(std::size_t(rows) * O);
  std::vector<float> h(HD);
  for (uint32_t r = 0; r < rows; r++) {
    const float* xr = x + std::size_t(r) * I;
    float* yr = y.data() + std::size_t(r) * O;
    if (HD > 0) {
      std::copy(b1, b1 + HD, h.begin());
      for (uint32_t i = 0; i < I; i++) {
        const float xi = xr[i];
        const float* row = W1 + std::size_t(i) * HD;
        for (uint32_t j = 0; j < HD; j++) h[j] += xi * row[j];
      }
      for (uint32_t j = 0; j < HD; j++) h[j] = std::max(h[j], 0.0f);
    }
    std::fill(yr, yr + O, 0.0f);
    for (uint32_t i = 0; i < I; i++) {
      const float xi = xr[i];
      const float* row = Wlin + std::size_t(i) * O;
      for (uint32_t k = 0; k < O; k++) yr[k] += xi * row[k];
    }
    for (uint32_t j = 0; j < HD; j++) {
      const float hj = h[j];
      const float* row = W2 + std::size_t(j) * O;
      for (uint32_t k = 0; k < O; k++) yr[k] += hj * row[k];
    }
  }
  return y;
}

// Forward and backward for R rows at once (R = TILE, or 1 for the batch's remainder), adding
// their gradients into `grad`; returns the rows' summed squared error (before `scale`).
template <uint32_t R>
double DenseTrainer::tile(const float* w, const DenseTrainJob& job, const uint32_t* rows, float scale) {
  const DenseLayout& L = layout_;
  const uint32_t I = L.inputs, O = L.outputs, HD = L.hidden;
  const float* __restrict Wlin = w + L.linearKernel;
  const float* __restrict W1 = w + L.hiddenKernel;
  const float* __restrict b1 = w + L.hiddenBias;
  const float* __restrict W2 = w + L.headKernel;
  float* __restrict gLin = grad_.data() + L.linearKernel;
  float* __restrict gW1 = grad_.data() + L.hiddenKernel;
  float* __restrict gB1 = grad_.data() + L.hiddenBias;
  float* __restrict gW2 = grad_.data() + L.headKernel;
  const float* x[R];
  const float* t[R];
  float* __restrict h[R];
  float* __restrict err[R];
  float* __restrict dh[R];
  for (uint32_t r = 0; r < R; r++) {
    x[r] = job.x + std::size_t(rows[r]) * I;
    t[r] = job.t + std::size_t(rows[r]) * O;
    h[r] = hidden_.data() + std::size_t(r) * HD;
    err[r] = error_.data() + std::size_t(r) * O;
    dh[r] = hiddenError_.data() + std::size_t(r) * HD;
  }
  double sse = 0;

  // Forward: hidden activations in blocks of JB units, whose R × JB sums stay in registers
  // while the loop walks down W1 (each W1 value loaded once per tile, used R times).
  if (HD > 0) {
    uint32_t j0 = 0;
    for (; j0 + JB <= HD; j0 += JB) {
      float acc[R][JB];
      for (uint32_t r = 0; r < R; r++)
        for (uint32_t jj = 0; jj < JB; jj++) acc[r][jj] = b1[j0 + jj];
      for (uint32_t i = 0; i < I; i++) {
        const float* __restrict row = W1 + std::size_t(i) * HD + j0;
        for (uint32_t r = 0; r < R; r++) {
          const float xi = x[r][i];
          for (uint32_t jj = 0; jj < JB; jj++) acc[r][jj] += xi * row[jj];
        }
      }
      for (uint32_t r = 0; r < R; r++)
        for (uint32_t jj = 0; jj < JB; jj++) h[r][j0 + jj] = std::max(acc[r][jj], 0.0f);
    }
    for (; j0 < HD; j0++) {  // the units past the last whole block
      for (uint32_t r = 0; r < R; r++) {
        float a = b1[j0];
        for (uint32_t i = 0; i < I; i++) a += x[r][i] * W1[std::size_t(i) * HD + j0];
        h[r][j0] = std::max(a, 0.0f);
      }
    }
  }
  for (uint32_t r = 0; r < R; r++) {
    float* __restrict e = err[r];
    std::fill(e, e + O, 0.0f);
    for (uint32_t i = 0; i < I; i++) {
      const float xi = x[r][i];
      const float* __restrict row = Wlin + std::size_t(i) * O;
      for (uint32_t k = 0; k < O; k++) e[k] += xi * row[k];
    }
    for (uint32_t j = 0; j < HD; j++) {
      const float hj = h[r][j];
      const float* __restrict row = W2 + std::size_t(j) * O;
      for (uint32_t k = 0; k < O; k++) e[k] += hj * row[k];
    }
    for (uint32_t k = 0; k < O; k++) {
      const float d = e[k] - t[r][k];
      sse += double(d) * d;
      e[k] = d * scale;
    }
    // Backward: the error through W2 and relu (derivative 1 where the activation is > 0).
    for (uint32_t j = 0; j < HD; j++) {
      float g = 0.0f;
      if (h[r][j] > 0.0f) {
        const float* __restrict row = W2 + std::size_t(j) * O;
        for (uint32_t k = 0; k < O; k++) g += e[k] * row[k];
      }
      dh[r][j] = g;
    }
  }
  // Gradients, each weight row once per tile.
  for (uint32_t i = 0; i < I; i++) {
    float* __restrict gl = gLin + std::size_t(i) * O;
    for (uint32_t r = 0; r < R; r++) {
      const float xi = x[r][i];
      for (uint32_t k = 0; k < O; k++) gl[k] += xi * err[r][k];
    }
    if (HD > 0) {
      // One load and store of each gradient value per tile, the R rows' terms added in registers.
      float* __restrict g1 = gW1 + std::size_t(i) * HD;
      float xi[R];
      for (uint32_t r = 0; r < R; r++) xi[r] = x[r][i];
      for (uint32_t j = 0; j < HD; j++) {
        float g = g1[j];
        for (uint32_t r = 0; r < R; r++) g += xi[r] * dh[r][j];
        g1[j] = g;
      }
    }
  }
  for (uint32_t j = 0; j < HD; j++) {
    float* __restrict g2 = gW2 + std::size_t(j) * O;
    for (uint32_t r = 0; r < R; r++) {
      gB1[j] += dh[r][j];
      const float hj = h[r][j];
      for (uint32_t k = 0; k < O; k++) g2[k] += hj * err[r][k];
    }
  }
  return sse;
}

double DenseTrainer::step(float* w, const DenseTrainJob& job, const uint32_t* rows, uint32_t count) {
  const DenseLayout& L = layout_;
  std::fill(grad_.begin(), grad_.end(), 0.0f);
  // d mean / d y for the mean over count × O values.
  const float scale = 2.0f / float(uint64_t(count) * L.outputs);
  double sse = 0;
  uint32_t r = 0;
  for (; r + TILE <= count; r += TILE) sse += tile<TILE>(w, job, rows + r, scale);
  for (; r < count; r++) sse += tile<1>(w, job, rows + r, scale);

  // Adam, as tfjs writes it: w −= lr · m̂ / (sqrt(v̂) + ε), m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
  // Bias corrections in double (once per step), the per-weight arithmetic in float like tfjs.
  const uint64_t t = ++adamStep_;
  const float lrT = float(job.learningRate / (1.0 - std::pow(adam_.beta1, double(t))));
  const float c2 = float(1.0 / (1.0 - std::pow(adam_.beta2, double(t))));
  const float b1c = float(adam_.beta1), b1r = float(1.0 - adam_.beta1);
  const float b2c = float(adam_.beta2), b2r = float(1.0 - adam_.beta2);
  const float eps = float(adam_.epsilon);
  for (uint32_t p = 0; p < L.size; p++) {
    const float g = grad_[p];
    const float m = b1c * m_[p] + b1r * g;
    const float v = b2c * v_[p] + b2r * g * g;
    m_[p] = m;
    v_[p] = v;
    w[p] -= lrT * m / (std::sqrt(v * c2) + eps);
  }
  return sse / (double(count) * L.outputs);
}

}  // namespace icosfl
