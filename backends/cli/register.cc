#include "backends/cli/register.h"

#include "backends/cli/cli_driver.h"

namespace lmgate::backends::cli {

absl::Status RegisterCliDriver(BackendRegistry& registry) {
  return registry.Register(
      "cli", [](const HostConfig& config) -> absl::StatusOr<std::unique_ptr<Driver>> {
        CliDriver::Options options;
        options.host = config;
        auto driver = CliDriver::Create(std::move(options));
        if (!driver.ok()) return driver.status();
        return std::unique_ptr<Driver>(std::move(*driver));
      });
}

}  // namespace lmgate::backends::cli
