// The Node-API face of the fused CPU training step (dense-step.hpp): NativeDenseTrainer.
#pragma once

#include <napi.h>

namespace icosfl {

Napi::Function defineDenseTrainer(Napi::Env env);

}  // namespace icosfl
