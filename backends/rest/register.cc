#include "backends/rest/register.h"

#include "backends/rest/rest_driver.h"

namespace lmgate::backends::rest {

absl::Status RegisterRestDriver(BackendRegistry& registry) {
  return registry.Register(
      "rest", [](const HostConfig& config) -> absl::StatusOr<std::unique_ptr<Driver>> {
        auto driver = RestDriver::Create({config});
        if (!driver.ok()) return driver.status();
        return std::unique_ptr<Driver>(std::move(*driver));
      });
}

}  // namespace lmgate::backends::rest
