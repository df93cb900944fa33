// Helpers shared by the sdk_ws driver tests.
#ifndef LMGATE_TESTS_BACKENDS_SDK_WS_TEST_UTIL_H_
#define LMGATE_TESTS_BACKENDS_SDK_WS_TEST_UTIL_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/sdk_ws/sdk_driver.h"

namespace lmgate::backends::sdk_ws::testing {

// Records one prediction; Wait*() block on notifications, never sleep.
class Collector : public GenerateObserver {
 public:
  void OnEvent(GenerateEvent event) override {
    absl::MutexLock lock(&mu_);
    if (completed_) ++events_after_complete_;
    events_.push_back(std::move(event));
  }
  void OnComplete(absl::StatusOr<GenerateResult> result) override {
    absl::MutexLock lock(&mu_);
    ++completions_;
    completed_ = true;
    result_ = std::move(result);
    complete_time_ = absl::Now();
  }

  // The result, or DEADLINE_EXCEEDED("test timeout") if nothing came within `timeout`.
  absl::StatusOr<GenerateResult> Wait(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&completed_), timeout)) {
      return absl::DeadlineExceededError("test timeout: no OnComplete");
    }
    return *result_;
  }
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<GenerateEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::string content() const {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& e : events_) {
      if (e.kind == GenerateEvent::Kind::kContent) out += e.text;
    }
    return out;
  }
  int completions() const {
    absl::MutexLock lock(&mu_);
    return completions_;
  }
  int events_after_complete() const {
    absl::MutexLock lock(&mu_);
    return events_after_complete_;
  }
  absl::Time complete_time() const {
    absl::MutexLock lock(&mu_);
    return complete_time_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<GenerateEvent> events_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::StatusOr<GenerateResult>> result_ ABSL_GUARDED_BY(mu_);
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  int completions_ ABSL_GUARDED_BY(mu_) = 0;
  int events_after_complete_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time complete_time_ ABSL_GUARDED_BY(mu_);
};

inline std::unique_ptr<SdkWsDriver> MakeDriver(const std::string& base_url,
                                               const std::string& api_token = "",
                                               SdkWsDriver::Options options = {}) {
  options.host.base_url = base_url;
  options.host.api_token = api_token;
  options.host.connect_timeout = absl::Seconds(5);
  auto driver = SdkWsDriver::Create(std::move(options));
  if (!driver.ok()) return nullptr;
  return *std::move(driver);
}

inline CallContext Ctx(absl::Duration timeout = absl::Seconds(20)) {
  CallContext ctx;
  ctx.deadline = absl::Now() + timeout;
  ctx.request_id = "test";
  return ctx;
}

inline GenerateRequest Chat(const std::string& model, const std::string& text) {
  GenerateRequest r;
  r.model = model;
  r.messages = {{"user", text}};
  return r;
}

}  // namespace lmgate::backends::sdk_ws::testing

#endif  // LMGATE_TESTS_BACKENDS_SDK_WS_TEST_UTIL_H_
