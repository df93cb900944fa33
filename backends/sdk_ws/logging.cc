#include "backends/sdk_ws/logging.h"

namespace lmgate::backends::sdk_ws {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()->clone("sdk_ws");
  return *logger;
}

}  // namespace lmgate::backends::sdk_ws
