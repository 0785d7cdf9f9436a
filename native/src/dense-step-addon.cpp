// NativeDenseTrainer: the fused CPU training step (dense-step.hpp) for JS, wrapped by
// native/dense-trainer.ts, which validates values first; here only types are re-checked and the
// C++ core re-checks sizes and indices (DenseStepError → RangeError).
//
//   new NativeDenseTrainer(layout, adam)
//   train(weights, x, t, order, rows, epochs, batchSize, learningRate)
//       → Promise<{ weights: Float32Array, epochLosses: Float64Array }>
//   resetOptimizer()
//   forward(weights, x, rows) → Float32Array [rows × outputs]   (synchronous: validation, forecasts)
//
// train() copies its inputs and runs on a libuv worker thread, so a daemon's event loop (ring
// pushes, the control socket, MQTT) keeps running while a round trains. The copies cost one pass
// over memory the step then reads epochs times; in exchange JS may reuse or drop its arrays at
// once, and nothing C++ reads can be detached or collected under it. One train() at a time per
// trainer (Adam's moments are its state): a second call, or resetOptimizer(), while one runs
// throws. The trainer's state is shared with the running job, so it outlives the JS object if
// that is collected mid-train.
#include "dense-step-addon.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dense-step.hpp"
#include "napi-checks.hpp"

namespace icosfl {

namespace {

struct TrainerState {
  DenseTrainer trainer;
  bool busy = false;
  TrainerState(const DenseLayout& layout, const AdamConstants& adam) : trainer(layout, adam) {}
};

template <typename T>
std::vector<T> copyOf(const Napi::TypedArrayOf<T>& a) {
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

class TrainWorker : public Napi::AsyncWorker {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<TrainerState> state, std::vector<float> weights, std::vector<float> x,
              std::vector<float> t, std::vector<uint32_t> order, DenseTrainJob job)
      : Napi::AsyncWorker(env, "icosfl:denseTrain"),
        deferred_(Napi::Promise::Deferred::New(env)),
        state_(std::move(state)),
        weights_(std::move(weights)),
        x_(std::move(x)),
        t_(std::move(t)),
        order_(std::move(order)),
        job_(job) {
    job_.x = x_.data();
    job_.t = t_.data();
    job_.order = order_.data();
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      losses_ = state_->trainer.train(weights_.data(), weights_.size(), job_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    state_->busy = false;
    auto weights = Napi::Float32Array::New(env, weights_.size());
    std::memcpy(weights.Data(), weights_.data(), weights_.size() * sizeof(float));
    auto losses = Napi::Float64Array::New(env, losses_.size());
    std::memcpy(losses.Data(), losses_.data(), losses_.size() * sizeof(double));
    Napi::Object out = Napi::Object::New(env);
    out.Set("weights", weights);
    out.Set("epochLosses", losses);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    state_->busy = false;
    deferred_.Reject(Napi::RangeError::New(Env(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<TrainerState> state_;
  std::vector<float> weights_, x_, t_;
  std::vector<uint32_t> order_;
  DenseTrainJob job_;
  std::vector<double> losses_;
};

// o[name] as a number, or a TypeError naming `what.name`.
Napi::Number numberField(Napi::Env env, const Napi::Object& o, const char* what, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + "." + name + " must be a number");
  return v.As<Napi::Number>();
}

class NativeDenseTrainer : public Napi::ObjectWrap<NativeDenseTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeDenseTrainer",
                       {
                           InstanceMethod("train", &NativeDenseTrainer::JS_train),
                           InstanceMethod("resetOptimizer", &NativeDenseTrainer::JS_resetOptimizer),
                           InstanceMethod("forward", &NativeDenseTrainer::JS_forward),
                       });
  }

  // new NativeDenseTrainer(layout: DenseLayout fields, adam: { beta1, beta2, epsilon })
  explicit NativeDenseTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeDenseTrainer>(info) {
    Napi::Env env = info.Env();
    REQUIRE_OBJECT(0, "layout");
    REQUIRE_OBJECT(1, "adam");
    const Napi::Object l = info[0].As<Napi::Object>(), a = info[1].As<Napi::Object>();
    DenseLayout layout;
    layout.inputs = numberField(env, l, "layout", "inputs").Uint32Value();
    layout.outputs = numberField(env, l, "layout", "outputs").Uint32Value();
    layout.hidden = numberField(env, l, "layout", "hidden").Uint32Value();
    layout.linearKernel = numberField(env, l, "layout", "linearKernel").Uint32Value();
    layout.hiddenKernel = numberField(env, l, "layout", "hiddenKernel").Uint32Value();
    layout.hiddenBias = numberField(env, l, "layout", "hiddenBias").Uint32Value();
    layout.headKernel = numberField(env, l, "layout", "headKernel").Uint32Value();
    layout.size = numberField(env, l, "layout", "size").Uint32Value();
    AdamConstants adam;
    adam.beta1 = numberField(env, a, "adam", "beta1").DoubleValue();
    adam.beta2 = numberField(env, a, "adam", "beta2").DoubleValue();
    adam.epsilon = numberField(env, a, "adam", "epsilon").DoubleValue();
    try {
      state_ = std::make_shared<TrainerState>(layout, adam);
    } catch (const DenseStepError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
  }

 private:
  // train(weights: Float32Array, x: Float32Array, t: Float32Array, order: Uint32Array,
  //       rows, epochs, batchSize, learningRate) → Promise
  Napi::Value JS_train(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    REQUIRE_TYPED(0, napi_float32_array, "Float32Array", "weights");
    REQUIRE_TYPED(1, napi_float32_array, "Float32Array", "x");
    REQUIRE_TYPED(2, napi_float32_array, "Float32Array", "t");
    REQUIRE_TYPED(3, napi_uint32_array, "Uint32Array", "order");
    REQUIRE_NUMBER(4, "rows");
    REQUIRE_NUMBER(5, "epochs");
    REQUIRE_NUMBER(6, "batchSize");
    REQUIRE_NUMBER(7, "learningRate");
    if (state_->busy) throw Napi::Error::New(env, "this trainer is already training; await the running train() first");
    const auto weights = info[0].As<Napi::Float32Array>();
    const auto x = info[1].As<Napi::Float32Array>();
    const auto t = info[2].As<Napi::Float32Array>();
    const auto order = info[3].As<Napi::Uint32Array>();
    DenseTrainJob job;
    job.rows = info[4].As<Napi::Number>().Uint32Value();
    job.epochs = info[5].As<Napi::Number>().Uint32Value();
    job.batchSize = info[6].As<Napi::Number>().Uint32Value();
    job.learningRate = info[7].As<Napi::Number>().DoubleValue();
    job.order = order.Data();
    try {
      // Sizes and every order index, here on the calling thread, so a bad call throws at once.
      state_->trainer.checkJob(weights.ElementLength(), job, x.ElementLength(), t.ElementLength(), order.ElementLength());
    } catch (const DenseStepError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    auto* worker = new TrainWorker(env, state_, copyOf(weights), copyOf(x), copyOf(t), copyOf(order), job);
    Napi::Promise promise = worker->promise();
    state_->busy = true;
    worker->Queue();  // the worker deletes itself after OnOK / OnError
    return promise;
  }

  Napi::Value JS_resetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_->busy) throw Napi::Error::New(env, "cannot reset the optimizer while train() runs");
    state_->trainer.resetOptimizer();
    return env.Undefined();
  }

  // forward(weights: Float32Array, x: Float32Array, rows) → Float32Array. On the calling thread:
  // a forward pass is a small fraction of a training epoch (about 1 ms for the default job's
  // validation set), less than a worker's round trip would add.
  Napi::Value JS_forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    REQUIRE_TYPED(0, napi_float32_array, "Float32Array", "weights");
    REQUIRE_TYPED(1, napi_float32_array, "Float32Array", "x");
    REQUIRE_NUMBER(2, "rows");
    const auto weights = info[0].As<Napi::Float32Array>();
    const auto x = info[1].As<Napi::Float32Array>();
    const uint32_t rows = info[2].As<Napi::Number>().Uint32Value();
    std::vector<float> y;
    try {
      y = state_->trainer.forward(weights.Data(), weights.ElementLength(), x.Data(), x.ElementLength(), rows);
    } catch (const DenseStepError& e) {
      throw Napi::RangeError::New(env, e.what());
    }
    auto out = Napi::Float32Array::New(env, y.size());
    std::memcpy(out.Data(), y.data(), y.size() * sizeof(float));
    return out;
  }

  std::shared_ptr<TrainerState> state_;
};

}  // namespace

Napi::Function defineDenseTrainer(Napi::Env env) { return NativeDenseTrainer::Define(env); }

}  // namespace icosfl
