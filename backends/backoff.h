// The one retry delay of lmgate: exponential with a cap and jitter. Used by the HTTP client's
// retries (backends/http/retry.h), the SDK WebSocket's reconnects and the registry's retries of
// pinned loads. Stateless, thread-safe.
#ifndef LMGATE_BACKENDS_BACKOFF_H_
#define LMGATE_BACKENDS_BACKOFF_H_

#include "absl/time/time.h"

namespace lmgate::backends {

struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(2);
  double multiplier = 2.0;
  // The delay is drawn uniformly from [(1 - jitter) * d, d], d the exponential delay (0 = d).
  double jitter = 0.5;
};

// The delay before retry number `retry` (0-based): min(initial * multiplier^retry, max), less
// the jitter share picked by `unit_random` in [0, 1).
absl::Duration Backoff(const BackoffPolicy& policy, int retry, double unit_random);

// A uniformly distributed number in [0, 1) (thread-local generator).
double UnitRandom();

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_BACKOFF_H_
