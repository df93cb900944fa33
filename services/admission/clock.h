// Clock: the time admission (scheduler, quota) reads and waits on, injected so that tests drive
// it (SimulatedClock) instead of waiting for time to pass.
//
// Thread-safe. RealClock() lives for the whole process; a SimulatedClock must outlive everything
// that uses it.
#ifndef LMGATE_SERVICES_ADMISSION_CLOCK_H_
#define LMGATE_SERVICES_ADMISSION_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::admission {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // With `mu` held: waits (releasing `mu`) until `cond` holds or Now() >= `deadline`, and
  // returns whether `cond` holds, `mu` held again (absl::Mutex::AwaitWithDeadline on this clock).
  virtual bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) = 0;
};

// absl::Now() and absl::Mutex's own deadlines.
Clock* RealClock();

// Time that moves only when the test calls Advance(). Waiters in AwaitUntil() wake when an
// Advance() reaches their deadline (or their condition holds).
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : now_ns_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(now_ns_.load()); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) override;
  // Moves time forward and wakes the waiters. Must not run concurrently with the destruction of
  // an object that waits on this clock (tests call both from the test thread).
  void Advance(absl::Duration d);

 private:
  std::atomic<int64_t> now_ns_;
  absl::Mutex waiters_mu_;
  // Mutexes of threads inside AwaitUntil (with a count: several may wait on one).
  std::map<absl::Mutex*, int> waiters_ ABSL_GUARDED_BY(waiters_mu_);
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_CLOCK_H_
