// The Node-API face of the ring and sd_notify (the dense training step has its own file,
// dense-step-addon.cpp). JS-facing methods are prefixed JS_; each re-checks
// argument types with one-line macros that throw (the TS wrapper native/ring.ts has already
// validated values and applied defaults). One error discipline: C++ exceptions
// (NAPI_CPP_EXCEPTIONS); RingError becomes an Error whose `code` the wrapper turns into an
// IcosflError.
//
// Buffer ownership: latest/range/stats return V8-allocated typed arrays (copies; the caller owns
// them). windows() returns typed arrays over malloc'd external ArrayBuffers: C++ fills them in
// one pass, V8 owns them from then on and frees them in the finalizer — they outlive close().
// The one-sample staging buffer is C++ memory that JS writes into (see RingState). The ring's
// own memory (the mapping) never leaves C++.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>

#include "dense-step-addon.hpp"
#include "napi-checks.hpp"
#include "ring.hpp"
#include "sd-notify.hpp"

namespace {

using icosfl::Ring;
using icosfl::RingError;

Napi::Error toJsError(Napi::Env env, const RingError& e) {
  if (e.kind == icosfl::RingErrorKind::Argument) return Napi::RangeError::New(env, e.what());
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  if (e.errnum != 0) {
    const char* name = strerrorname_np(e.errnum);
    err.Set("errno", Napi::String::New(env, name ? name : "EIO"));
  }
  if (e.kind == icosfl::RingErrorKind::NoSpace) {
    err.Set("neededBytes", Napi::Number::New(env, double(e.neededBytes)));
    err.Set("freeBytes", Napi::Number::New(env, double(e.freeBytes)));
  }
  return err;
}

// Runs `body`, turning RingError into the JS error the wrapper expects.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const RingError& e) {
    throw toJsError(env, e);
  }
}

Napi::Float32Array externalFloats(Napi::Env env, size_t count) {
  if (count == 0) return Napi::Float32Array::New(env, 0);
  const size_t bytes = count * sizeof(float);
  void* data = std::malloc(bytes);
  if (data == nullptr) throw Napi::RangeError::New(env, "cannot allocate " + std::to_string(bytes) + " bytes");
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
  auto buffer = Napi::ArrayBuffer::New(env, data, bytes, [bytes](Napi::Env e, void* p) {
    std::free(p);
    Napi::MemoryManagement::AdjustExternalMemory(e, -int64_t(bytes));
  });
  return Napi::Float32Array::New(env, count, buffer, 0);
}

Napi::Float64Array doubles(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}

// What the ring object, its fast push function and its staging buffer share. Each holds a
// shared_ptr, so the mapping and the staging row live until the last of the three is collected,
// whatever order V8 finalizes them in.
struct RingState {
  std::unique_ptr<Ring> ring;
  // The staging sample, written by the wrapper and read by pushStaged: bytes [0, 8) the
  // timestamp (f64), then one f32 per channel. Passing the timestamp here rather than as an
  // argument spares two Node-API calls per push. malloc'd: untyped storage JS writes into.
  unsigned char* staging = nullptr;
  size_t stagingBytes = 0;
  explicit RingState(uint32_t channels) : stagingBytes(8 + 4 * size_t(channels)) {
    staging = static_cast<unsigned char*>(std::calloc(1, stagingBytes));
    if (staging == nullptr) throw std::bad_alloc();
  }
  ~RingState() { std::free(staging); }
  RingState(const RingState&) = delete;
  RingState& operator=(const RingState&) = delete;
  double timestamp() const {
    double t;
    std::memcpy(&t, staging, 8);
    return t;
  }
  const float* values() const { return reinterpret_cast<const float*>(staging + 8); }
};
using SharedState = std::shared_ptr<RingState>;

// pushStaged(): the hot path, as a plain Node-API function whose callback data is the ring
// state. node-addon-api's ObjectWrap method dispatch (unwrap + CallbackInfo) measured ~200 ns per
// call here against ~25 ns for this; the wrapper has already validated everything it staged.
napi_value JS_pushStaged(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  RingState& state = **static_cast<SharedState*>(data);
  if (!state.ring->isOpen()) {
    napi_throw_error(env, nullptr, "the ring is closed");
    return nullptr;
  }
  state.ring->push(state.timestamp(), state.values());
  return nullptr;
}

class NativeRing : public Napi::ObjectWrap<NativeRing> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRing",
                       {
                           InstanceMethod("openInfo", &NativeRing::JS_openInfo),
                           InstanceMethod("pushBatch", &NativeRing::JS_pushBatch),
                           InstanceMethod("size", &NativeRing::JS_size),
                           InstanceMethod("latest", &NativeRing::JS_latest),
                           InstanceMethod("range", &NativeRing::JS_range),
                           InstanceMethod("stats", &NativeRing::JS_stats),
                           InstanceMethod("windows", &NativeRing::JS_windows),
                           InstanceMethod("close", &NativeRing::JS_close),
                       });
  }

  // new NativeRing(path, capacity, channels, schemaTag)
  explicit NativeRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRing>(info) {
    Napi::Env env = info.Env();
    REQUIRE_STRING(0, "path");
    REQUIRE_NUMBER(1, "capacity");
    REQUIRE_NUMBER(2, "channels");
    REQUIRE_STRING(3, "schemaTag");
    icosfl::RingLayout layout;
    layout.capacity = info[1].As<Napi::Number>().Uint32Value();
    layout.channels = info[2].As<Napi::Number>().Uint32Value();
    layout.schemaTag = info[3].As<Napi::String>().Utf8Value();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    state_ = std::make_shared<RingState>(layout.channels);
    state_->ring.reset(guarded(env, [&] { return Ring::open(path, layout, openInfo_); }));
    Napi::Object self = info.This().As<Napi::Object>();

    // The staging sample, seen from JS through an external buffer whose finalizer drops its share.
    auto* stagingShare = new SharedState(state_);
    auto buffer = Napi::ArrayBuffer::New(env, state_->staging, state_->stagingBytes,
                                         [](Napi::Env, void*, SharedState* share) { delete share; }, stagingShare);
    self.Set("stagingTimestamp", Napi::Float64Array::New(env, 1, buffer, 0));
    self.Set("staging", Napi::Float32Array::New(env, layout.channels, buffer, sizeof(double)));

    napi_value fn;
    auto* fnShare = new SharedState(state_);
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, "pushStaged", NAPI_AUTO_LENGTH, JS_pushStaged, fnShare, &fn));
    NAPI_THROW_IF_FAILED_VOID(env, napi_add_finalizer(env, fn, fnShare, [](napi_env, void* share, void*) { delete static_cast<SharedState*>(share); }, nullptr, nullptr));
    self.Set("pushStaged", Napi::Value(env, fn));
  }

 private:
  Ring& open(Napi::Env env) {
    if (!state_->ring->isOpen()) throw Napi::Error::New(env, "the ring is closed");
    return *state_->ring;
  }

  Napi::Value JS_openInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("created", openInfo_.created);
    o.Set("movedAsideTo", openInfo_.movedAsideTo);
    o.Set("corruptReason", openInfo_.corruptReason);
    o.Set("reservedBytes", Napi::Number::New(env, double(openInfo_.reservedBytes)));
    return o;
  }

  // pushBatch(timestamps: Float64Array [n], values: Float32Array [n × channels])
  Napi::Value JS_pushBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring& ring = open(env);
    REQUIRE_TYPED(0, napi_float64_array, "Float64Array", "timestampsMs");
    REQUIRE_TYPED(1, napi_float32_array, "Float32Array", "values");
    auto ts = info[0].As<Napi::Float64Array>();
    auto values = info[1].As<Napi::Float32Array>();
    THROW_TYPE(values.ElementLength() == ts.ElementLength() * ring.channels(), "values must hold timestamps.length × channels");
    ring.pushBatch(ts.Data(), values.Data(), ts.ElementLength());
    return env.Undefined();
  }

  Napi::Value JS_size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(open(info.Env()).size()));
  }

  // latest(n) → [timestamps: Float64Array, values: Float32Array]
  Napi::Value JS_latest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring& ring = open(env);
    REQUIRE_NUMBER(0, "n");
    const uint64_t k = ring.latestCount(uint64_t(info[0].As<Napi::Number>().DoubleValue()));
    auto ts = Napi::Float64Array::New(env, k);
    auto values = Napi::Float32Array::New(env, k * ring.channels());
    ring.copyLatest(k, ts.Data(), values.Data());
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, ts);
    out.Set(1u, values);
    return out;
  }

  // range(fromMs, toMs) → [timestamps, values]
  Napi::Value JS_range(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring& ring = open(env);
    REQUIRE_NUMBER(0, "fromMs");
    REQUIRE_NUMBER(1, "toMs");
    const double from = info[0].As<Napi::Number>().DoubleValue(), to = info[1].As<Napi::Number>().DoubleValue();
    const uint64_t k = ring.rangeCount(from, to);
    auto ts = Napi::Float64Array::New(env, k);
    auto values = Napi::Float32Array::New(env, k * ring.channels());
    ring.copyRange(from, to, ts.Data(), values.Data());
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, ts);
    out.Set(1u, values);
    return out;
  }

  Napi::Value JS_stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const icosfl::ChannelStats s = open(env).stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", doubles(env, s.count));
    o.Set("mean", doubles(env, s.mean));
    o.Set("std", doubles(env, s.std));
    o.Set("min", doubles(env, s.min));
    o.Set("max", doubles(env, s.max));
    return o;
  }

  // windows(lookback, horizon, stride) → { x, y, n, skipped }
  Napi::Value JS_windows(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring& ring = open(env);
    REQUIRE_NUMBER(0, "lookback");
    REQUIRE_NUMBER(1, "horizon");
    REQUIRE_NUMBER(2, "stride");
    const uint32_t lookback = info[0].As<Napi::Number>().Uint32Value();
    const uint32_t horizon = info[1].As<Napi::Number>().Uint32Value();
    const uint32_t stride = info[2].As<Napi::Number>().Uint32Value();
    const icosfl::WindowPlan plan = guarded(env, [&] { return ring.planWindows(lookback, horizon, stride); });
    const size_t n = plan.starts.size();
    auto x = externalFloats(env, n * lookback * ring.channels());
    auto y = externalFloats(env, n * horizon * ring.channels());
    if (n > 0) ring.fillWindows(plan, lookback, horizon, x.Data(), y.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("x", x);
    o.Set("y", y);
    o.Set("n", Napi::Number::New(env, double(n)));
    o.Set("skipped", Napi::Number::New(env, double(plan.skipped)));
    return o;
  }

  Napi::Value JS_close(const Napi::CallbackInfo& info) {
    state_->ring->close();
    return info.Env().Undefined();
  }

  icosfl::OpenInfo openInfo_;
  SharedState state_;
};

// inspectRing(path) → what the header says, without locking or mapping the file.
Napi::Value JS_inspectRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STRING(0, "path");
  const icosfl::RingHeaderInfo h = guarded(env, [&] { return Ring::inspect(info[0].As<Napi::String>().Utf8Value()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("valid", h.valid);
  o.Set("reason", h.reason);
  o.Set("version", h.version);
  o.Set("capacity", h.capacity);
  o.Set("channels", h.channels);
  o.Set("dtype", h.dtype);
  o.Set("schemaTag", h.schemaTag);
  o.Set("writeSequence", Napi::Number::New(env, double(h.writeSequence)));
  o.Set("fileBytes", Napi::Number::New(env, double(h.fileBytes)));
  o.Set("allocatedBytes", Napi::Number::New(env, double(h.allocatedBytes)));
  return o;
}

// sdNotify(state) → true when sent, false when $NOTIFY_SOCKET is unset.
Napi::Value JS_sdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STRING(0, "state");
  try {
    return Napi::Boolean::New(env, icosfl::sdNotify(info[0].As<Napi::String>().Utf8Value()) == icosfl::NotifyResult::Sent);
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::system_error& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    const char* name = strerrorname_np(e.code().value());
    err.Set("code", Napi::String::New(env, name ? name : "EIO"));
    err.Set("errno", Napi::Number::New(env, e.code().value()));
    throw err;
  }
}

// callFloor(): does nothing, through the same Node-API calls as pushStaged minus the push, so
// test/bench/ring.bench.ts can report what part of push_ns is crossing into native code at all.
napi_value JS_callFloor(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  return nullptr;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_value floor;
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, "callFloor", NAPI_AUTO_LENGTH, JS_callFloor, nullptr, &floor), exports);
  exports.Set("callFloor", Napi::Value(env, floor));
  exports.Set("NativeRing", NativeRing::Define(env));
  exports.Set("sdNotify", Napi::Function::New(env, JS_sdNotify, "sdNotify"));
  exports.Set("inspectRing", Napi::Function::New(env, JS_inspectRing, "inspectRing"));
  exports.Set("formatVersion", Napi::Number::New(env, Ring::FORMAT_VERSION));
  // The Node-API version this addon was compiled against (`version` prints it beside the running node's).
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("NativeDenseTrainer", icosfl::defineDenseTrainer(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(icosfl_native, Init)
