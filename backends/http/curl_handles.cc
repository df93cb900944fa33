#include "backends/http/curl_handles.h"

#include <mutex>

#include <spdlog/spdlog.h>

#include "backends/http/log.h"

namespace lmgate::backends::http {

CURLcode EnsureCurlGlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

spdlog::logger& HttpLog() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    std::shared_ptr<spdlog::logger> existing = spdlog::get("http");
    if (existing) return existing;
    std::shared_ptr<spdlog::logger> created = spdlog::default_logger()->clone("http");
    try {
      spdlog::register_logger(created);
    } catch (const spdlog::spdlog_ex&) {
      // Registered concurrently by someone else: use theirs.
      if (auto other = spdlog::get("http")) return other;
    }
    return created;
  }();
  return *logger;
}

}  // namespace lmgate::backends::http
