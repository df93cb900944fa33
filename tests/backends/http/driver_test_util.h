// Helpers for driver tests: an observer that records a prediction, and a bounded poll for
// conditions only observable from outside (the emulator's counters).
#ifndef LMGATE_TESTS_BACKENDS_HTTP_DRIVER_TEST_UTIL_H_
#define LMGATE_TESTS_BACKENDS_HTTP_DRIVER_TEST_UTIL_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "backends/driver.h"

namespace lmgate::backends::testing {

// Records one prediction. Thread-safe.
class RecordingObserver : public GenerateObserver {
 public:
  void OnEvent(GenerateEvent event) override {
    absl::MutexLock lock(&mu_);
    if (completed_) ++events_after_complete_;
    if (event.kind == GenerateEvent::Kind::kContent) content_ += event.text;
    if (event.kind == GenerateEvent::Kind::kReasoning) reasoning_ += event.text;
    events_.push_back(std::move(event));
  }
  void OnComplete(absl::StatusOr<GenerateResult> result) override {
    {
      absl::MutexLock lock(&mu_);
      ++complete_calls_;
      completed_ = true;
      result_ = std::move(result);
    }
    done_.Notify();
  }

  bool Wait(absl::Duration timeout = absl::Seconds(20)) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return events_.size() >= n || completed_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return events_.size() >= n;
  }
  absl::StatusOr<GenerateResult> result() {
    absl::MutexLock lock(&mu_);
    return result_;
  }
  std::vector<GenerateEvent> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::string content() {
    absl::MutexLock lock(&mu_);
    return content_;
  }
  std::string reasoning() {
    absl::MutexLock lock(&mu_);
    return reasoning_;
  }
  int complete_calls() {
    absl::MutexLock lock(&mu_);
    return complete_calls_;
  }
  int events_after_complete() {
    absl::MutexLock lock(&mu_);
    return events_after_complete_;
  }

 private:
  absl::Mutex mu_;
  std::vector<GenerateEvent> events_ ABSL_GUARDED_BY(mu_);
  std::string content_ ABSL_GUARDED_BY(mu_);
  std::string reasoning_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<GenerateResult> result_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("pending");
  int complete_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int events_after_complete_ ABSL_GUARDED_BY(mu_) = 0;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification done_;
};

// Polls `condition` until it holds or `timeout` passes (for state that offers no notification,
// such as the emulator's counters). Correctness never depends on the poll interval.
inline bool PollUntil(const std::function<bool()>& condition,
                      absl::Duration timeout = absl::Seconds(5)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

}  // namespace lmgate::backends::testing

#endif  // LMGATE_TESTS_BACKENDS_HTTP_DRIVER_TEST_UTIL_H_
