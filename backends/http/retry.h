// Retry policy of the one HTTP client (client.h runs the only retry loop). Pure functions,
// thread-safe.
//
// A failed attempt is retried only when ALL hold:
// - the request is idempotent (GET, or marked idempotent by the caller), or the host answered
//   that it did not run it (HostDidNotRun: a model in its JIT window), whatever the method;
// - no response byte was handed to the caller (a stream that started is never retried);
// - the failure is a transport failure with UNAVAILABLE (refused, reset, empty reply, connect
//   timeout), an HTTP 5xx other than 501/505, or HostDidNotRun;
// - fewer than `max_retries` retries were made;
// - the backoff ends before the call's deadline.
#ifndef LMGATE_BACKENDS_HTTP_RETRY_H_
#define LMGATE_BACKENDS_HTTP_RETRY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/backoff.h"

namespace lmgate::backends::http {

struct RetryPolicy {
  int max_retries = 2;  // HostConfig::max_retries
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  double multiplier = 2.0;
  // The delay is drawn uniformly from [(1 - jitter) * d, d], d the exponential delay.
  double jitter = 0.5;
};

// GET and HEAD are idempotent by definition; anything else only when `marked`.
bool IsIdempotent(absl::string_view method, bool marked);

// Whether `failure` (from status.h) is worth retrying for an idempotent request.
bool IsRetryableFailure(const absl::Status& failure);

struct AttemptOutcome {
  absl::Status status;      // the attempt's failure
  bool idempotent = false;  // IsIdempotent()
  bool delivered = false;   // response bytes reached the caller
  int retries_done = 0;     // 0 after the first attempt
};

// Whether to retry after `outcome`, not yet looking at the deadline.
bool ShouldRetry(const RetryPolicy& policy, const AttemptOutcome& outcome);

// The delay before retry number `retry` (0-based), `unit_random` in [0, 1): backends::Backoff
// with the policy's delays.
absl::Duration Backoff(const RetryPolicy& policy, int retry, double unit_random);

using backends::UnitRandom;

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_RETRY_H_
