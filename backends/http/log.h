// The spdlog logger of the HTTP layer and the HTTP drivers ("http"). Messages about one call
// start with "[<request id>] ". Nothing above debug on the per-token path.
#ifndef LMGATE_BACKENDS_HTTP_LOG_H_
#define LMGATE_BACKENDS_HTTP_LOG_H_

#include <spdlog/spdlog.h>

namespace lmgate::backends::http {

// Created on first use from spdlog's default logger (same sinks). Thread-safe.
spdlog::logger& HttpLog();

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_LOG_H_
