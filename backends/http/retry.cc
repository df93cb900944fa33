#include "backends/http/retry.h"

#include "backends/http/status.h"

namespace lmgate::backends::http {

bool IsIdempotent(absl::string_view method, bool marked) {
  return marked || method == "GET" || method == "HEAD";
}

bool IsRetryableFailure(const absl::Status& failure) {
  if (failure.ok()) return false;
  if (HostDidNotRun(failure)) return true;
  if (IsTransportFailure(failure)) return failure.code() == absl::StatusCode::kUnavailable;
  std::optional<int> http = HttpStatusOf(failure);
  return http && *http >= 500 && *http < 600 && *http != 501 && *http != 505;
}

bool ShouldRetry(const RetryPolicy& policy, const AttemptOutcome& outcome) {
  return (outcome.idempotent || HostDidNotRun(outcome.status)) && !outcome.delivered &&
         outcome.retries_done < policy.max_retries && IsRetryableFailure(outcome.status);
}

absl::Duration Backoff(const RetryPolicy& policy, int retry, double unit_random) {
  return backends::Backoff(
      BackoffPolicy{policy.initial_backoff, policy.max_backoff, policy.multiplier, policy.jitter},
      retry, unit_random);
}

}  // namespace lmgate::backends::http
