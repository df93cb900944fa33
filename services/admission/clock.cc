#include "services/admission/clock.h"

#include <vector>

#include "absl/time/clock.h"

namespace lmgate::admission {
namespace {

class Real : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) override {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

}  // namespace

Clock* RealClock() {
  static Clock* const clock = new Real();
  return clock;
}

bool SimulatedClock::AwaitUntil(absl::Mutex* mu, const absl::Condition& cond,
                                absl::Time deadline) {
  {
    absl::MutexLock lock(&waiters_mu_);
    ++waiters_[mu];
  }
  struct Args {
    const absl::Condition* cond;
    const SimulatedClock* clock;
    absl::Time deadline;
  } args{&cond, this, deadline};
  // absl::Mutex re-evaluates this whenever `mu` is released; Advance() releases it after moving
  // the time.
  mu->Await(absl::Condition(
      +[](Args* a) { return a->cond->Eval() || a->clock->Now() >= a->deadline; }, &args));
  {
    absl::MutexLock lock(&waiters_mu_);
    if (--waiters_[mu] == 0) waiters_.erase(mu);
  }
  return cond.Eval();
}

void SimulatedClock::Advance(absl::Duration d) {
  now_ns_ += absl::ToInt64Nanoseconds(d);
  std::vector<absl::Mutex*> poke;
  {
    absl::MutexLock lock(&waiters_mu_);
    for (const auto& [mu, n] : waiters_) poke.push_back(mu);
  }
  for (absl::Mutex* mu : poke) {
    mu->Lock();
    mu->Unlock();
  }
}

}  // namespace lmgate::admission
