#include "backends/openai/register.h"

#include "backends/openai/openai_driver.h"

namespace lmgate::backends::openai {

absl::Status RegisterOpenAiDriver(BackendRegistry& registry) {
  return registry.Register(
      "openai", [](const HostConfig& config) -> absl::StatusOr<std::unique_ptr<Driver>> {
        auto driver = OpenAiDriver::Create({config});
        if (!driver.ok()) return driver.status();
        return std::unique_ptr<Driver>(std::move(*driver));
      });
}

}  // namespace lmgate::backends::openai
