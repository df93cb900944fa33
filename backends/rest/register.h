// Registers the `rest` driver (RestDriver) in a BackendRegistry.
#ifndef LMGATE_BACKENDS_REST_REGISTER_H_
#define LMGATE_BACKENDS_REST_REGISTER_H_

#include "absl/status/status.h"
#include "backends/registry.h"

namespace lmgate::backends::rest {

// ALREADY_EXISTS if "rest" is taken.
absl::Status RegisterRestDriver(BackendRegistry& registry);

}  // namespace lmgate::backends::rest

#endif  // LMGATE_BACKENDS_REST_REGISTER_H_
