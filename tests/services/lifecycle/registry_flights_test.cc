// ModelRegistry's flights behind the LoadFlights interface (flights.h): a scripted link stands
// for the other gateways. A followed load adopts the leader's instance without loading; a flight
// whose last local waiter left stays while other gateways wait, and is cancelled once the link
// says nobody anywhere does; the leader reports its result to the link exactly once.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "services/lifecycle/registry.h"

namespace lmgate::lifecycle {
namespace {

using backends::FakeDriver;

constexpr char kModel[] = "fake/llm-small";

// What the scripted links saw; the test decides their answers.
struct Script {
  absl::Mutex mu;
  bool follow = false;  // AwaitTurn: follow with `followed` (else lead)
  backends::InstanceInfo followed;
  bool keep_without_local_waiters = false;  // LocalWaiters(0) answers false
  std::vector<int> local_waiters ABSL_GUARDED_BY(mu);
  std::vector<absl::Status> finished ABSL_GUARDED_BY(mu);
  std::function<void()> abandoned ABSL_GUARDED_BY(mu);
  int opened ABSL_GUARDED_BY(mu) = 0;
};

class ScriptedLink : public FlightLink {
 public:
  explicit ScriptedLink(Script* s) : s_(s) {}
  Turn AwaitTurn(const backends::CancelToken&, const std::function<void(double)>& progress,
                 absl::StatusOr<backends::InstanceInfo>* result) override {
    if (!s_->follow) return Turn::kLead;
    progress(0.5);
    *result = s_->followed;
    return Turn::kFollowed;
  }
  bool shared_lead() const override { return false; }
  void Progress(double) override {}
  void Finish(const absl::StatusOr<backends::InstanceInfo>& r) override {
    absl::MutexLock lock(&s_->mu);
    s_->finished.push_back(r.status());
  }
  bool LocalWaiters(int n) override {
    absl::MutexLock lock(&s_->mu);
    s_->local_waiters.push_back(n);
    return !s_->keep_without_local_waiters;
  }

 private:
  Script* const s_;
};

class ScriptedFlights : public LoadFlights {
 public:
  explicit ScriptedFlights(Script* s) : s_(s) {}
  std::unique_ptr<FlightLink> Open(const std::string&, std::function<void()> abandoned) override {
    absl::MutexLock lock(&s_->mu);
    ++s_->opened;
    s_->abandoned = std::move(abandoned);
    return std::make_unique<ScriptedLink>(s_);
  }

 private:
  Script* const s_;
};

class RegistryFlightsTest : public ::testing::Test {
 protected:
  void Make() {
    auto fake = std::make_unique<FakeDriver>(FakeDriver::Options{});
    fake_ = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    host_ = std::make_unique<DriverHostOps>(
        std::make_shared<backends::DriverSet>(std::move(drivers)));
    RegistryOptions options;
    options.refresh_interval = absl::ZeroDuration();
    options.tick = absl::Milliseconds(5);
    options.load_flights = [this] { return std::make_unique<ScriptedFlights>(&script_); };
    auto r = ModelRegistry::Create(std::move(options), host_.get(), &bus_);
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = *std::move(r);
  }
  void TearDown() override { registry_.reset(); }

  static CallContext Ctx() {
    CallContext c;
    c.cancel = std::make_shared<backends::CancelToken>();
    c.request_id = "test";
    return c;
  }
  static AcquireRequest Req(std::function<void(double)> progress = nullptr) {
    AcquireRequest r;
    r.model = kModel;
    r.holder = "req";
    r.on_load_progress = std::move(progress);
    return r;
  }
  Script script_;
  EventBus bus_;
  FakeDriver* fake_ = nullptr;
  std::unique_ptr<DriverHostOps> host_;
  std::unique_ptr<ModelRegistry> registry_;
};

TEST_F(RegistryFlightsTest, AFollowedLoadAdoptsTheLeadersInstanceWithoutLoading) {
  script_.follow = true;
  script_.followed.identifier = "fake/llm-small@other-gateway";
  script_.followed.model_key = kModel;
  script_.followed.context_length = 4096;
  script_.followed.parallel_slots = 2;
  Make();
  std::atomic<double> progress{0};
  auto lease = registry_->AcquireBlocking(Ctx(), Req([&](double p) { progress = p; }));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ((*lease)->instance(), "fake/llm-small@other-gateway");
  EXPECT_EQ((*lease)->parallel_slots(), 2);
  EXPECT_EQ(fake_->loads_started(), 0);
  EXPECT_EQ(progress.load(), 0.5);
  auto snap = registry_->Get(kModel);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->state, State::kReady);
  // The next request finds the adopted instance READY: no second flight.
  auto again = registry_->AcquireBlocking(Ctx(), Req());
  ASSERT_TRUE(again.ok()) << again.status();
  absl::MutexLock lock(&script_.mu);
  EXPECT_EQ(script_.opened, 1);
}

TEST_F(RegistryFlightsTest, TheLeaderReportsItsResultToTheLinkOnce) {
  Make();
  auto lease = registry_->AcquireBlocking(Ctx(), Req());
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(fake_->loads_started(), 1);
  absl::MutexLock lock(&script_.mu);
  ASSERT_EQ(script_.finished.size(), 1u);
  EXPECT_TRUE(script_.finished[0].ok());
}

TEST_F(RegistryFlightsTest, AFlightOtherGatewaysWaitForOutlivesItsLocalWaiters) {
  script_.keep_without_local_waiters = true;
  Make();
  fake_->HoldLoads(true);
  CallContext first = Ctx();
  absl::Notification first_done;
  registry_->Acquire(first, Req(), [&](absl::StatusOr<std::unique_ptr<Lease>> l) {
    EXPECT_TRUE(absl::IsCancelled(l.status())) << l.status();
    first_done.Notify();
  });
  ASSERT_TRUE(fake_->WaitForHeldLoads(1, absl::Seconds(10)));
  first.cancel->Cancel();
  first_done.WaitForNotification();
  {
    absl::MutexLock lock(&script_.mu);
    EXPECT_EQ(script_.local_waiters, std::vector<int>{0});
    EXPECT_TRUE(script_.finished.empty()) << "the load was ended with other gateways waiting";
  }
  // A new local request joins the load still running for the other gateways.
  CallContext second = Ctx();
  absl::Notification second_done;
  registry_->Acquire(second, Req(), [&](absl::StatusOr<std::unique_ptr<Lease>> l) {
    EXPECT_TRUE(absl::IsCancelled(l.status())) << l.status();
    second_done.Notify();
  });
  second.cancel->Cancel();
  second_done.WaitForNotification();
  std::function<void()> abandoned;
  {
    absl::MutexLock lock(&script_.mu);
    EXPECT_EQ(script_.opened, 1);
    EXPECT_EQ(script_.local_waiters, (std::vector<int>{0, 1, 0}));
    abandoned = script_.abandoned;
  }
  // Nobody anywhere waits now: the link says so and the upstream load is cancelled.
  abandoned();
  absl::MutexLock lock(&script_.mu);
  auto finished = [&]() ABSL_SHARED_LOCKS_REQUIRED(script_.mu) {
    return !script_.finished.empty();
  };
  ASSERT_TRUE(script_.mu.AwaitWithTimeout(absl::Condition(&finished), absl::Seconds(10)));
  EXPECT_TRUE(absl::IsCancelled(script_.finished[0])) << script_.finished[0];
}

}  // namespace
}  // namespace lmgate::lifecycle
