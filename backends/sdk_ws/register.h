// Registration of the sdk_ws driver in a BackendRegistry, explicit (no static initialisers).
#ifndef LMGATE_BACKENDS_SDK_WS_REGISTER_H_
#define LMGATE_BACKENDS_SDK_WS_REGISTER_H_

#include "absl/status/status.h"
#include "backends/registry.h"

namespace lmgate::backends::sdk_ws {

// The registry name, DriverKindName(DriverKind::kSdk).
inline constexpr char kSdkWsDriverName[] = "sdk_ws";

}  // namespace lmgate::backends::sdk_ws

namespace lmgate::backends {

// Registers "sdk_ws" → SdkWsDriver::Create with default tunables. ALREADY_EXISTS if taken.
absl::Status RegisterSdkWsDriver(BackendRegistry& registry);

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_SDK_WS_REGISTER_H_
