#include "backends/sdk_ws/logging.h"

namespace lmgate::backends::sdk_ws {

spdlog::logger& Log() {
  // Registered, so spdlog::set_level() and friends reach it; shares the default logger's sinks.
  static std::shared_ptr<spdlog::logger> logger = [] {
    std::shared_ptr<spdlog::logger> existing = spdlog::get("sdk_ws");
    if (existing) return existing;
    std::shared_ptr<spdlog::logger> created = spdlog::default_logger()->clone("sdk_ws");
    spdlog::register_logger(created);
    return created;
  }();
  return *logger;
}

}  // namespace lmgate::backends::sdk_ws
