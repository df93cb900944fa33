// The sdk_ws component logger (spdlog, shares the default logger's sinks). Per-token paths log
// nothing above debug.
#ifndef LMGATE_BACKENDS_SDK_WS_LOGGING_H_
#define LMGATE_BACKENDS_SDK_WS_LOGGING_H_

#include <memory>

#include "spdlog/spdlog.h"

namespace lmgate::backends::sdk_ws {

// Thread-safe; created on first use.
spdlog::logger& Log();

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_LOGGING_H_
