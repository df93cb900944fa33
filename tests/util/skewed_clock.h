// SkewedClock: real time moved forward by an offset a test sets, for code whose time is
// injected (admission::Clock) but which also waits on real time (a listing that should look
// stale now, a real host behind it). Waits end on real time: the deadline minus the skew.
// Thread-safe.
#ifndef LMGATE_TESTS_UTIL_SKEWED_CLOCK_H_
#define LMGATE_TESTS_UTIL_SKEWED_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "services/admission/clock.h"

namespace lmgate::testutil {

class SkewedClock : public admission::Clock {
 public:
  void set_skew(absl::Duration d) { skew_ns_ = absl::ToInt64Nanoseconds(d); }
  absl::Time Now() const override { return absl::Now() + absl::Nanoseconds(skew_ns_.load()); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) override {
    return mu->AwaitWithDeadline(cond, deadline - absl::Nanoseconds(skew_ns_.load()));
  }

 private:
  std::atomic<int64_t> skew_ns_{0};
};

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_UTIL_SKEWED_CLOCK_H_
