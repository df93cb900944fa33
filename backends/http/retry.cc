#include "backends/http/retry.h"

#include <algorithm>
#include <cmath>
#include <random>

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
  double factor = std::pow(std::max(1.0, policy.multiplier), std::max(0, retry));
  absl::Duration full = std::min(policy.initial_backoff * factor, policy.max_backoff);
  double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  double u = std::clamp(unit_random, 0.0, 1.0);
  return full * (1.0 - jitter * u);
}

double UnitRandom() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace lmgate::backends::http
