// The fused training step of the dense forecasters on the CPU, in plain C++ (no Node headers):
//
//   y = x·Wlin + relu(x·W1 + b1)·W2        loss = mean((y − t)²)        Adam on every weight
//
// It is the maths of agent/trainer/gpu/dense-shaders.ts (the WebGPU step) and of tfjs's own
// training of the same model: the same loss, gradient, relu derivative and Adam with bias
// correction, so weights trained here and by tfjs from the same start and batch order agree up to
// float summation order (test/integration/trainer/native-dense.test.ts). Why it exists: tfjs's
// WASM backend runs the step as ~80 small kernels with a JS round trip each, and measured 3.4×
// slower than PyTorch on one core for this model; here one batch is one pass over its rows with
// every weight matrix in L1 cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace icosfl {

// Where each weight matrix sits in the flat weight vector (model.ts's getFlatWeights order).
// hidden = 0 is the 'linear' model (only Wlin).
struct DenseLayout {
  uint32_t inputs = 0;
  uint32_t outputs = 0;
  uint32_t hidden = 0;
  uint32_t linearKernel = 0;  // Wlin [inputs × outputs]
  uint32_t hiddenKernel = 0;  // W1 [inputs × hidden]
  uint32_t hiddenBias = 0;    // b1 [hidden]
  uint32_t headKernel = 0;    // W2 [hidden × outputs]
  uint32_t size = 0;          // total weights
};

struct AdamConstants {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-7;
};

// One train() call: `epochs` passes over `rows` rows in the given order, minibatches of
// `batchSize` (the last one of an epoch may be smaller).
struct DenseTrainJob {
  const float* x = nullptr;         // [rows × inputs]
  const float* t = nullptr;         // [rows × outputs]
  const uint32_t* order = nullptr;  // [epochs × rows], each a row index < rows
  uint32_t rows = 0;
  uint32_t epochs = 0;
  uint32_t batchSize = 0;
  double learningRate = 0;
};

// A bad layout or job (sizes, offsets, an order index out of range). The addon turns it into a
// RangeError; the TS wrapper has already checked the same things, so reaching it is a bug there.
class DenseStepError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class DenseTrainer {
 public:
  DenseTrainer(const DenseLayout& layout, const AdamConstants& adam);

  // Trains `weights` (layout.size floats) in place; returns each epoch's mean batch loss.
  // Adam's moments and step count carry over between calls until resetOptimizer().
  std::vector<double> train(float* weights, std::size_t weightCount, const DenseTrainJob& job);

  void resetOptimizer();

  // The model's outputs [rows × outputs] for `rows` rows of x ([rows × inputs]): the forward pass
  // of train() (same sums in the same order), for validation losses and forecasts. Sizes are
  // checked before anything is allocated. Reads only the layout, so it may run while train()
  // runs on another thread.
  std::vector<float> forward(const float* weights, std::size_t weightCount, const float* x, std::size_t xCount, uint32_t rows) const;

  // Checks a job against the layout without training (the addon calls it before going async).
  void checkJob(std::size_t weightCount, const DenseTrainJob& job, std::size_t xCount, std::size_t tCount,
                std::size_t orderCount) const;

  const DenseLayout& layout() const { return layout_; }

 private:
  // One minibatch: gradients of the batch's mean loss into grad_, then Adam. Returns the batch loss.
  double step(float* w, const DenseTrainJob& job, const uint32_t* rows, uint32_t count);
  // Adam's moments, the gradient and a tile's scratch (about 3 floats a weight), on the first
  // train(): an instance used only for forward() (Forecaster.nativeForward beside a GPU trainer)
  // never holds them.
  void allocateTrainingState();
  template <uint32_t R>
  double tile(const float* w, const DenseTrainJob& job, const uint32_t* rows, float scale);

  DenseLayout layout_;
  AdamConstants adam_;
  std::vector<float> m_, v_, grad_;  // empty until the first train()
  std::vector<float> hidden_, error_, hiddenError_;  // a tile's activations and errors (TILE rows)
  uint64_t adamStep_ = 0;
};

}  // namespace icosfl
