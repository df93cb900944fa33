#include "backends/sdk_ws/register.h"

#include <memory>
#include <utility>

#include "backends/sdk_ws/sdk_driver.h"

namespace lmgate::backends {

absl::Status RegisterSdkWsDriver(BackendRegistry& registry) {
  return registry.Register(
      sdk_ws::kSdkWsDriverName,
      [](const HostConfig& config) -> absl::StatusOr<std::unique_ptr<Driver>> {
        sdk_ws::SdkWsDriver::Options options;
        options.host = config;
        absl::StatusOr<std::unique_ptr<sdk_ws::SdkWsDriver>> driver =
            sdk_ws::SdkWsDriver::Create(std::move(options));
        if (!driver.ok()) return driver.status();
        return std::unique_ptr<Driver>(*std::move(driver));
      });
}

}  // namespace lmgate::backends
