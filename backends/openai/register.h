// Registers the `openai` driver (OpenAiDriver with JIT detection) in a BackendRegistry.
#ifndef LMGATE_BACKENDS_OPENAI_REGISTER_H_
#define LMGATE_BACKENDS_OPENAI_REGISTER_H_

#include "absl/status/status.h"
#include "backends/registry.h"

namespace lmgate::backends::openai {

// ALREADY_EXISTS if "openai" is taken.
absl::Status RegisterOpenAiDriver(BackendRegistry& registry);

}  // namespace lmgate::backends::openai

#endif  // LMGATE_BACKENDS_OPENAI_REGISTER_H_
