// Glue between HostConfig (registry.h) and the HTTP layer, for the HTTP drivers.
#ifndef LMGATE_BACKENDS_HTTP_HOST_H_
#define LMGATE_BACKENDS_HTTP_HOST_H_

#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/http/client.h"
#include "backends/registry.h"

namespace lmgate::backends::http {

// An HttpClient for `config`: normalised base URL (url.h), token, timeouts, max_retries.
// INVALID_ARGUMENT for a bad base URL.
absl::StatusOr<std::unique_ptr<HttpClient>> CreateHostClient(const HostConfig& config);

// Remembers the last probe result for `ttl` (Driver::Probe may answer from a ~1 s cache).
// Thread-safe; concurrent callers after expiry may probe concurrently (harmless).
class ProbeCache {
 public:
  explicit ProbeCache(absl::Duration ttl = absl::Seconds(1)) : ttl_(ttl) {}
  absl::Status Get(const std::function<absl::Status()>& probe);

 private:
  const absl::Duration ttl_;
  absl::Mutex mu_;
  absl::Time at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_HOST_H_
