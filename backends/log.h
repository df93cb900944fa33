// RequestLog: a component's spdlog logger bound to one call, so that every message about the
// call starts with "[<request id>] " without each call site repeating it (as Envoy's stream
// logging adds the stream id). Nothing is formatted for a level the logger drops, so it costs
// nothing on the per-token path at debug.
//
//   const RequestLog log(HttpLog(), ctx.request_id);
//   log.info("loading {} through REST v1", params.model_key);  // "[req-7] loading ..."
//
// Holds references: the logger and the request id must outlive it. Thread-compatible (spdlog's
// loggers are thread-safe).
#ifndef LMGATE_BACKENDS_LOG_H_
#define LMGATE_BACKENDS_LOG_H_

#include <string_view>
#include <utility>

#include "spdlog/spdlog.h"

namespace lmgate::backends {

class RequestLog {
 public:
  RequestLog(spdlog::logger& logger, std::string_view request_id)
      : logger_(logger), request_id_(request_id) {}

  template <typename... Args>
  void debug(spdlog::format_string_t<Args...> fmt, Args&&... args) const {
    Log(spdlog::level::debug, fmt, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(spdlog::format_string_t<Args...> fmt, Args&&... args) const {
    Log(spdlog::level::info, fmt, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) const {
    Log(spdlog::level::warn, fmt, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(spdlog::format_string_t<Args...> fmt, Args&&... args) const {
    Log(spdlog::level::err, fmt, std::forward<Args>(args)...);
  }

 private:
  template <typename... Args>
  void Log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt,
           Args&&... args) const {
    if (!logger_.should_log(level)) return;
    logger_.log(level, "[{}] {}", request_id_, fmt::format(fmt, std::forward<Args>(args)...));
  }

  spdlog::logger& logger_;
  const std::string_view request_id_;
};

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_LOG_H_
