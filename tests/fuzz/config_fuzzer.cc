// Fuzz target: the config parser (services/config.h ParseConfig + ValidateConfig). Any text must
// give a Config or INVALID_ARGUMENT-style status, never a crash or an exception.
#include <cstdint>
#include <string>

#include "services/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = lmgate::services::ParseConfig(text);
  if (config.ok()) {
    (void)lmgate::services::ValidateConfig(*config, {"sdk_ws", "rest", "openai", "cli"});
  }
  return 0;
}
