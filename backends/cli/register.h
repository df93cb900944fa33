// Registers the `cli` driver (CliDriver) in a BackendRegistry.
#ifndef LMGATE_BACKENDS_CLI_REGISTER_H_
#define LMGATE_BACKENDS_CLI_REGISTER_H_

#include "absl/status/status.h"
#include "backends/registry.h"

namespace lmgate::backends::cli {

// ALREADY_EXISTS if "cli" is taken.
absl::Status RegisterCliDriver(BackendRegistry& registry);

}  // namespace lmgate::backends::cli

#endif  // LMGATE_BACKENDS_CLI_REGISTER_H_
