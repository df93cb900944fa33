// The retry hint of an admission refusal (quota, queue full, queue timeout): how long the caller
// should wait before trying again. Admission attaches it to its RESOURCE_EXHAUSTED status as a
// payload; the gRPC edge (services/status.h) sends it as the `retry-after-ms` trailer.
// Thread-safe (pure functions).
#ifndef LMGATE_SERVICES_ADMISSION_RETRY_AFTER_H_
#define LMGATE_SERVICES_ADMISSION_RETRY_AFTER_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace lmgate::admission {

inline constexpr char kRetryAfterPayload[] = "type.lmgate.dev/retry-after-ms";

// `status` with `wait` attached (whole milliseconds, rounded up, at least 1).
inline absl::Status WithRetryAfter(absl::Status status, absl::Duration wait) {
  const int64_t ms =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(ms)));
  return status;
}

// The milliseconds WithRetryAfter attached; nullopt if none.
inline std::optional<int64_t> RetryAfterMs(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  int64_t ms = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return ms;
}

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_RETRY_AFTER_H_
