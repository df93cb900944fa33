#include "backends/builtin.h"

namespace lmgate::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  (void)registry;
  return absl::OkStatus();
}

}  // namespace lmgate::backends
