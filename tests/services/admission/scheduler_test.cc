#include "services/admission/scheduler.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "services/admission/clock.h"
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

// Every test runs on simulated time: nothing waits for time to pass.
SimulatedClock* TestClock() {
  static SimulatedClock* const clock = new SimulatedClock();
  return clock;
}

SchedulerOptions OneSlot() {
  SchedulerOptions o;
  o.clock = TestClock();
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

// Weights 1:3 with both tenants backlogged: 75% ± 3% of 400 admissions go to the weight-3 tenant.
TEST(FairSchedulerTest, WeightsOneToThreeGiveSeventyFivePercent) {
  Recorder r;
  FairScheduler s(OneSlot());
  s.Submit(T("blocker"), r.For("blocker"));
  for (int i = 0; i < 400; ++i) {
    s.Submit(T("light", 1), r.For("light"));
    s.Submit(T("heavy", 3), r.For("heavy"));
  }
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(r.ReleaseOne());
  auto order = r.order();
  ASSERT_GE(order.size(), 401u);
  int heavy = 0;
  for (size_t i = 1; i <= 400; ++i) heavy += order[i] == "heavy" ? 1 : 0;
  EXPECT_NEAR(heavy / 400.0, 0.75, 0.03) << heavy << " of 400";
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

TEST(FairSchedulerTest, HigherPriorityFirst) {
  Recorder r;
  FairScheduler s(OneSlot());
  s.Submit(T("blocker"), r.For("blocker"));
  s.Submit(T("x", 1, Priority::kLow), r.For("low"));
  s.Submit(T("y", 1, Priority::kHigh), r.For("high"));
  s.Submit(T("z", 1, Priority::kNormal), r.For("normal"));
  for (int i = 0; i < 4; ++i) r.ReleaseOne();
  EXPECT_EQ(r.order(), (std::vector<std::string>{"blocker", "high", "normal", "low"}));
}

// A LOW request rises one class per aging interval waited: after two intervals it overtakes a
// NORMAL one that arrived later (and even ties HIGH, winning by arrival); after less than one
// interval it does not.
TEST(FairSchedulerTest, AgingLetsALowRequestOvertakeNormal) {
  SchedulerOptions o = OneSlot();
  o.aging = absl::Seconds(10);
  {
    Recorder r;
    FairScheduler s(o);
    s.Submit(T("blocker"), r.For("blocker"));
    s.Submit(T("x", 1, Priority::kLow), r.For("young-low"));
    TestClock()->Advance(absl::Seconds(9));
    s.Submit(T("y", 1, Priority::kNormal), r.For("normal"));
    r.ReleaseOne();
    EXPECT_EQ(r.order()[1], "normal");
  }
  {
    Recorder r;
    FairScheduler s(o);
    s.Submit(T("blocker"), r.For("blocker"));
    s.Submit(T("x", 1, Priority::kLow), r.For("old-low"));
    TestClock()->Advance(absl::Seconds(20));
    s.Submit(T("y", 1, Priority::kNormal), r.For("normal"));
    s.Submit(T("z", 1, Priority::kHigh), r.For("high"));
    r.ReleaseOne();
    r.ReleaseOne();
    r.ReleaseOne();
    EXPECT_EQ(r.order(), (std::vector<std::string>{"blocker", "old-low", "high", "normal"}));
  }
}

TEST(FairSchedulerTest, FullQueueIsRefusedWithARetryHint) {
  SchedulerOptions o = OneSlot();
  o.max_queue = 2;
  o.queue_timeout = absl::Seconds(50);
  Recorder r;
  FairScheduler s(o);
  s.Submit(T("a"), r.For("a"));
  s.Submit(T("b"), r.For("b"));
  s.Submit(T("c"), r.For("c"));
  s.Submit(T("d"), r.For("d"));  // queue full (b, c)
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.errors()[0].message().find("full"), std::string::npos);
  EXPECT_EQ(RetryAfterMs(r.errors()[0]), 50000);  // the queue timeout: retry-after-ms
  EXPECT_EQ(s.Stats("m").queued, 2);
}

TEST(FairSchedulerTest, QueueTimeoutOnSimulatedTime) {
  SchedulerOptions o = OneSlot();
  o.queue_timeout = absl::Seconds(60);
  Recorder r;
  FairScheduler s(o);
  s.Submit(T("a"), r.For("a"));
  s.Submit(T("b"), r.For("b"));
  TestClock()->Advance(absl::Seconds(59));
  s.Submit(T("c"), r.For("c"));
  TestClock()->Advance(absl::Seconds(2));  // b waited 61 s, c 2 s
  ASSERT_TRUE(r.WaitErrors(1));
  EXPECT_EQ(r.errors()[0].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfterMs(r.errors()[0]), 60000);
  EXPECT_EQ(s.Stats("m").queued, 1);  // c still waits
  ASSERT_TRUE(r.ReleaseOne());
  EXPECT_EQ(r.order(), (std::vector<std::string>{"a", "c"}));
  ASSERT_TRUE(r.ReleaseOne());
  EXPECT_TRUE(s.AllStats().empty());
  EXPECT_EQ(r.errors().size(), 1u);
}

// Every way out of the queue — cancel, deadline, the scheduler's destruction — leaves no queue
// entry and no slot behind.
TEST(FairSchedulerTest, EveryCancelPathLeavesNoSlotOrQueueEntry) {
  Recorder r;  // outlives the scheduler: its slots are released into it
  {
    FairScheduler s(OneSlot());
    s.Submit(T("a"), r.For("a"));
    Ticket cancellable = T("b");
    cancellable.cancel = std::make_shared<backends::CancelToken>();
    s.Submit(cancellable, r.For("b"));
    Ticket late = T("c");
    late.deadline = TestClock()->Now() + absl::Seconds(5);
    s.Submit(late, r.For("c"));
    s.Submit(T("d"), r.For("d"));
    EXPECT_EQ(s.Stats("m").queued, 3);

    cancellable.cancel->Cancel();
    ASSERT_EQ(r.errors().size(), 1u);  // inline, on the cancelling thread
    EXPECT_EQ(r.errors()[0].code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(s.Stats("m").queued, 2);

    TestClock()->Advance(absl::Seconds(6));
    ASSERT_TRUE(r.WaitErrors(2));
    EXPECT_EQ(r.errors()[1].code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(s.Stats("m").queued, 1);

    // The running request finishes: d runs and finishes; nothing is left.
    ASSERT_TRUE(r.ReleaseOne());
    EXPECT_EQ(r.order(), (std::vector<std::string>{"a", "d"}));
    ASSERT_TRUE(r.ReleaseOne());
    EXPECT_TRUE(s.AllStats().empty()) << s.AllStats().size() << " queues left";

    // Destroyed with one running and one queued: the queued one fails UNAVAILABLE.
    s.Submit(T("e"), r.For("e"));
    s.Submit(T("f"), r.For("f"));
  }
  ASSERT_EQ(r.errors().size(), 3u);
  EXPECT_EQ(r.errors()[2].code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(r.ReleaseOne());  // e's slot, released after the scheduler is gone: a no-op
  EXPECT_FALSE(r.ReleaseOne());
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

namespace lmgate::admission {
namespace {

TEST(SimulatedClockTest, AdvanceWakesAWaiterAtItsDeadline) {
  SimulatedClock clock;
  absl::Mutex mu;
  bool never = false;
  bool woke = false;
  const absl::Time deadline = clock.Now() + absl::Seconds(1);
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitUntil(&mu, absl::Condition(&never), deadline);
    woke = true;
  });
  clock.Advance(absl::Milliseconds(500));
  {
    absl::MutexLock lock(&mu);
    EXPECT_FALSE(woke);
  }
  clock.Advance(absl::Milliseconds(600));
  waiter.join();
  EXPECT_TRUE(woke);
}

}  // namespace
}  // namespace lmgate::admission
