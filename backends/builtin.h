// Registers the drivers built into lmgate ("sdk_ws", "rest", "openai", "cli") explicitly — no
// static-initialiser registration anywhere.
#ifndef LMGATE_BACKENDS_BUILTIN_H_
#define LMGATE_BACKENDS_BUILTIN_H_

#include "absl/status/status.h"
#include "backends/registry.h"

namespace lmgate::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry);

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_BUILTIN_H_
