#include "services/logging.h"

#include <spdlog/pattern_formatter.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lmgate::services {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kJson};

bool IsRecordLogger(const spdlog::string_view_t& name) {
  const absl::string_view n(name.data(), name.size());
  return n == "access" || n == "lifecycle";
}

// json: records pass through (they are JSON objects already), other lines are wrapped; text:
// spdlog's usual pattern for every line.
class LineFormatter : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format)
      : format_(format), text_(std::make_unique<spdlog::pattern_formatter>()) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    if (format_ == LogFormat::kText) {
      text_->format(msg, dest);
      return;
    }
    const absl::string_view payload(msg.payload.data(), msg.payload.size());
    std::string line;
    if (IsRecordLogger(msg.logger_name) && absl::StartsWith(payload, "{")) {
      line = std::string(payload);
    } else {
      const auto level = spdlog::level::to_string_view(msg.level);
      nlohmann::json j = {
          {"ts", absl::FormatTime(absl::RFC3339_full, absl::FromChrono(msg.time),
                                  absl::UTCTimeZone())},
          {"level", std::string(level.data(), level.size())},
          {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
          {"msg", std::string(payload)}};
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  const LogFormat format_;
  std::unique_ptr<spdlog::pattern_formatter> text_;
};

// A text value: bare when it has no space, quote or '=', else JSON-quoted.
std::string TextValue(const nlohmann::json& v) {
  if (!v.is_string()) return v.dump();
  const std::string& s = v.get_ref<const std::string&>();
  if (!s.empty() && s.find_first_of(" \"=\t\n") == std::string::npos) return s;
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

LogFormat CurrentLogFormat() { return g_format.load(std::memory_order_relaxed); }
void SetLogFormat(LogFormat format) { g_format.store(format, std::memory_order_relaxed); }

void SetupLogging(LogFormat format) {
  SetLogFormat(format);
  spdlog::default_logger()->set_formatter(std::make_unique<LineFormatter>(format));
}

void LogRecord(spdlog::logger& logger, spdlog::level::level_enum level, absl::string_view what,
               const nlohmann::json& fields) {
  if (!logger.should_log(level)) return;
  if (CurrentLogFormat() == LogFormat::kJson) {
    logger.log(level, "{}", fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  std::string line(what);
  for (const auto& [k, v] : fields.items()) absl::StrAppend(&line, " ", k, "=", TextValue(v));
  logger.log(level, "{}", line);
}

spdlog::logger& RecordLogger(const std::string& name) {
  static absl::Mutex mu;
  static auto* loggers = new std::map<std::string, std::shared_ptr<spdlog::logger>>();
  absl::MutexLock lock(&mu);
  auto& l = (*loggers)[name];
  if (!l) l = spdlog::default_logger()->clone(name);
  return *l;
}

}  // namespace lmgate::services
