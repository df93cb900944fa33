#include "backends/http/host.h"

#include <utility>

#include "backends/http/url.h"

namespace lmgate::backends::http {

absl::StatusOr<std::unique_ptr<HttpClient>> CreateHostClient(const HostConfig& config) {
  absl::StatusOr<HostUrl> url = ParseHostUrl(config.base_url);
  if (!url.ok()) return url.status();
  HttpClient::Options options;
  options.base_url = url->HttpBase();
  options.api_token = config.api_token;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.idle_timeout = config.idle_timeout;
  options.retry.max_retries = config.max_retries;
  return HttpClient::Create(std::move(options));
}

absl::Status ProbeCache::Get(const std::function<absl::Status()>& probe) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() - at_ < ttl_) return last_;
  }
  absl::Status status = probe();
  absl::MutexLock lock(&mu_);
  at_ = absl::Now();
  last_ = status;
  return status;
}

}  // namespace lmgate::backends::http
