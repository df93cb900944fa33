#include "services/admission/scheduler.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "services/admission/retry_after.h"

namespace lmgate::admission {
namespace {

// Records admissions in order; slots are kept until the test releases them.
class Recorder {
 public:
  AdmitFn For(const std::string& tenant) {
    return [this, tenant](absl::StatusOr<std::unique_ptr<Slot>> s) {
      absl::MutexLock lock(&mu_);
      if (s.ok()) {
        order_.push_back(tenant);
        slots_.push_back(*std::move(s));
      } else {
        errors_.push_back(s.status());
      }
    };
  }
  // Releases the oldest held slot (admitting the next request); returns false if none.
  bool ReleaseOne() {
    std::unique_ptr<Slot> s;
    {
      absl::MutexLock lock(&mu_);
      if (slots_.empty()) return false;
      s = std::move(slots_.front());
      slots_.erase(slots_.begin());
    }
    s.reset();
    return true;
  }
  std::vector<std::string> order() {
    absl::MutexLock lock(&mu_);
    return order_;
  }
  std::vector<absl::Status> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }
  bool WaitErrors(size_t n) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return errors_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

Ticket T(const std::string& tenant, double weight = 1, Priority p = Priority::kNormal) {
  Ticket t;
  t.key = "m";
  t.tenant = tenant;
  t.weight = weight;
  t.priority = p;
  return t;
}

SchedulerOptions OneSlot() {
  SchedulerOptions o;
  o.default_concurrency = 1;
  o.max_queue = 10000;
  o.aging = absl::ZeroDuration();
  o.queue_timeout = absl::Hours(1);
  return o;
}

TEST(FairSchedulerTest, WeightedSharesWhenEveryTenantSaturates) {
  Recorder r;  // outlives the scheduler: its slots are released into it
  FairScheduler s(OneSlot());
  s.Submit(T("blocker"), r.For("blocker"));
  for (int i = 0; i < 200; ++i) {
    s.Submit(T("a", 1), r.For("a"));
    s.Submit(T("b", 1), r.For("b"));
    s.Submit(T("c", 2), r.For("c"));
  }
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(r.ReleaseOne());
  std::map<std::string, int> share;
  auto order = r.order();
  for (size_t i = 1; i <= 400; ++i) ++share[order[i]];  // while all three are backlogged
  EXPECT_NEAR(share["a"], 100, 10);
  EXPECT_NEAR(share["b"], 100, 10);
  EXPECT_NEAR(share["c"], 200, 20);
}

TEST(FairSchedulerTest, AFloodingTenantDoesNotDelayAnotherBeyondItsShare) {
  Recorder r;  // outlives the scheduler: its slots are released into it
  FairScheduler s(OneSlot());
  s.Submit(T("blocker"), r.For("blocker"));
  for (int i = 0; i < 100; ++i) s.Submit(T("flood"), r.For("flood"));
  s.Submit(T("polite"), r.For("polite"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.ReleaseOne());
  auto order = r.order();
  // Admitted within the first two after the blocker, not behind 100 flood requests.
  EXPECT_TRUE(order[1] == "polite" || order[2] == "polite") << order[1] << " " << order[2];
}

TEST(FairSchedulerTest, HigherPriorityFirstAndAgingPreventsStarvation) {
  SchedulerOptions o = OneSlot();
  Recorder r;
  FairScheduler s(o);
  s.Submit(T("blocker"), r.For("blocker"));
  s.Submit(T("x", 1, Priority::kLow), r.For("low"));
  s.Submit(T("y", 1, Priority::kHigh), r.For("high"));
  s.Submit(T("z", 1, Priority::kNormal), r.For("normal"));
  for (int i = 0; i < 4; ++i) r.ReleaseOne();
  EXPECT_EQ(r.order(), (std::vector<std::string>{"blocker", "high", "normal", "low"}));

  o.aging = absl::Milliseconds(1);
  Recorder r2;
  FairScheduler aged(o);
  aged.Submit(T("blocker"), r2.For("blocker"));
  aged.Submit(T("x", 1, Priority::kLow), r2.For("old-low"));
  absl::SleepFor(absl::Milliseconds(20));  // let the low request age (time passing is the test)
  aged.Submit(T("y", 1, Priority::kHigh), r2.For("new-high"));
  r2.ReleaseOne();
  EXPECT_EQ(r2.order()[1], "old-low");
}

TEST(FairSchedulerTest, FullQueueTimeoutDeadlineAndCancel) {
  SchedulerOptions o = OneSlot();
  o.max_queue = 2;
  o.queue_timeout = absl::Milliseconds(50);
  o.tick = absl::Milliseconds(5);
  Recorder r;
  FairScheduler s(o);
  s.Submit(T("a"), r.For("a"));
  Ticket cancellable = T("b");
  cancellable.cancel = std::make_shared<backends::CancelToken>();
  s.Submit(cancellable, r.For("b"));
  Ticket late = T("c");
  late.deadline = absl::Now() + absl::Milliseconds(10);
  s.Submit(late, r.For("c"));
  s.Submit(T("d"), r.For("d"));  // queue full (b, c)
  ASSERT_TRUE(r.WaitErrors(1));
  EXPECT_EQ(r.errors()[0].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.errors()[0].message().find("full"), std::string::npos);
  EXPECT_EQ(RetryAfterMs(r.errors()[0]), 50);  // the queue timeout: retry-after-ms
  cancellable.cancel->Cancel();
  ASSERT_TRUE(r.WaitErrors(3));
  std::map<absl::StatusCode, int> codes;
  for (const auto& e : r.errors()) ++codes[e.code()];
  EXPECT_EQ(codes[absl::StatusCode::kCancelled], 1);
  EXPECT_EQ(codes[absl::StatusCode::kDeadlineExceeded], 1);
  EXPECT_EQ(s.Stats("m").queued, 0);
  s.Submit(T("e"), r.For("e"));  // waits for a, then times out in the queue
  ASSERT_TRUE(r.WaitErrors(4));
  EXPECT_EQ(r.errors()[3].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfterMs(r.errors()[3]), 50);
  EXPECT_EQ(s.Stats("m").in_use, 1);
}

// A queue's concurrency is the instance's parallel slots, carried by the ticket at submission.
TEST(FairSchedulerTest, ConcurrencyComesWithTheTicket) {
  Recorder r;
  FairScheduler s(OneSlot());
  Ticket t = T("a");
  t.concurrency = 3;
  for (int i = 0; i < 4; ++i) s.Submit(t, r.For("a"));
  EXPECT_EQ(r.order().size(), 3u);
  EXPECT_EQ(s.Stats("m").in_use, 3);
  EXPECT_EQ(s.Stats("m").queued, 1);
  EXPECT_EQ(s.Stats("m").concurrency, 3);
}

TEST(FairSchedulerTest, GlobalLimitSpansModels) {
  SchedulerOptions o = OneSlot();
  o.default_concurrency = 4;
  o.max_concurrent_total = 2;
  Recorder r;
  FairScheduler s(o);
  Ticket a = T("t");
  a.key = "model-a";
  Ticket b = T("t");
  b.key = "model-b";
  s.Submit(a, r.For("a1"));
  s.Submit(a, r.For("a2"));
  s.Submit(b, r.For("b1"));  // global limit: waits although model-b is idle
  EXPECT_EQ(r.order().size(), 2u);
  EXPECT_EQ(s.Stats("model-b").queued, 1);
  r.ReleaseOne();  // a model-a slot frees: the global slot goes to model-b
  EXPECT_EQ(r.order().back(), "b1");
  EXPECT_EQ(s.Stats("model-b").in_use, 1);
}

}  // namespace
}  // namespace lmgate::admission

namespace lmgate::admission {
namespace {

// A queue lives while something runs or waits in it, so a thousand distinct keys leave nothing.
TEST(FairSchedulerTest, IdleQueuesOfUnnamedModelsAreDropped) {
  FairScheduler s(OneSlot());
  Recorder r;
  for (int i = 0; i < 1000; ++i) {
    Ticket t = T("a");
    t.key = "nosuch/model-" + std::to_string(i);
    s.Submit(t, r.For("a"));
    // A second request for the same key queues behind the first, then is admitted.
    s.Submit(t, r.For("a"));
    EXPECT_EQ(s.Stats(t.key).queued, 1);
    ASSERT_TRUE(r.ReleaseOne());
    ASSERT_TRUE(r.ReleaseOne());
  }
  EXPECT_TRUE(s.AllStats().empty()) << s.AllStats().size() << " queues left";
}

}  // namespace
}  // namespace lmgate::admission
