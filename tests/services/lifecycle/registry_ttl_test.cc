// Idle TTL expiry on the registry's injected clock: time moves only when the test advances a
// SimulatedClock, and the test waits on the expiry events, never for time to pass.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "services/admission/clock.h"
#include "services/lifecycle/registry.h"
#include "tests/util/time_scale.h"

namespace lmgate::lifecycle {
namespace {

using backends::FakeDriver;

CallContext Ctx() {
  CallContext c;
  c.cancel = std::make_shared<backends::CancelToken>();
  c.request_id = "test";
  return c;
}

// The models whose instances expired, in order.
class Expiries {
 public:
  // `on_expired`, if set, runs for each expiry on the thread that published it.
  explicit Expiries(EventBus* bus, std::function<void(const Event&)> on_expired = nullptr)
      : bus_(bus), on_expired_(std::move(on_expired)) {
    id_ = bus_->Subscribe("", [this] {
      Event e;
      while (bus_->Next(id_, &e)) {
        if (e.kind != Event::Kind::kExpired) continue;
        {
          absl::MutexLock lock(&mu_);
          models_.push_back(e.model_key);
        }
        if (on_expired_) on_expired_(e);
      }
    });
  }
  ~Expiries() { bus_->Unsubscribe(id_); }
  // Waits (real time, bounded) until `n` expiries were seen; returns them.
  std::vector<std::string> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return models_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), testutil::Scaled(absl::Seconds(10)));
    return models_;
  }

 private:
  EventBus* const bus_;
  const std::function<void(const Event&)> on_expired_;
  EventBus::SubscriberId id_ = 0;
  absl::Mutex mu_;
  std::vector<std::string> models_ ABSL_GUARDED_BY(mu_);
};

bool HasReadyInstance(ModelRegistry& r, const std::string& key) { return r.ModelReady(key); }

// A registry on `clock` with one fake driver: idle TTL 10 min, 9 min for fake/embed (so a pass
// before 10 min shows itself), a 1 s maintenance tick and no periodic host refresh.
std::unique_ptr<ModelRegistry> MakeRegistry(admission::SimulatedClock* clock, EventBus* bus,
                                            std::unique_ptr<DriverHostOps>* host) {
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  drivers.push_back(std::make_unique<FakeDriver>(FakeDriver::Options{}));
  *host =
      std::make_unique<DriverHostOps>(std::make_shared<backends::DriverSet>(std::move(drivers)));
  RegistryOptions options;
  options.clock = clock;
  options.refresh_interval = absl::ZeroDuration();
  options.tick = absl::Seconds(1);
  options.default_ttl = absl::Minutes(10);
  ModelPolicy probe;
  probe.ttl = absl::Minutes(9);
  options.models["fake/embed"] = probe;
  auto created = ModelRegistry::Create(std::move(options), host->get(), bus);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? *std::move(created) : nullptr;
}

// Loads `model` through a lease and releases it: its idle time counts from now.
void UseOnce(ModelRegistry& registry, const std::string& model) {
  AcquireRequest req;
  req.model = model;
  req.holder = "r";
  auto lease = registry.AcquireBlocking(Ctx(), req);
  ASSERT_TRUE(lease.ok()) << lease.status();
}

TEST(RegistryTtlTest, IdleInstancesExpireOnTheInjectedClock) {
  admission::SimulatedClock clock(absl::Now());
  EventBus bus;
  Expiries expiries(&bus);
  std::unique_ptr<DriverHostOps> host;
  std::unique_ptr<ModelRegistry> registry = MakeRegistry(&clock, &bus, &host);
  ASSERT_NE(registry, nullptr);

  for (const char* model : {"fake/llm-small", "fake/embed"}) {
    AcquireRequest req;
    req.model = model;
    req.holder = "r";
    auto lease = registry->AcquireBlocking(Ctx(), req);
    ASSERT_TRUE(lease.ok()) << lease.status();
    // Held across a long stretch of simulated time: a leased instance never expires.
    if (std::string(model) == "fake/llm-small") {
      clock.Advance(absl::Hours(1));
      EXPECT_TRUE(HasReadyInstance(*registry, model));
    }
  }  // leases released: idle time counts from here

  clock.Advance(absl::Minutes(9) + absl::Seconds(2));
  EXPECT_EQ(expiries.WaitFor(1), std::vector<std::string>({"fake/embed"}));
  // That pass saw llm-small idle for 9 min of its 10: still loaded.
  EXPECT_TRUE(HasReadyInstance(*registry, "fake/llm-small"));

  clock.Advance(absl::Minutes(1));
  EXPECT_EQ(expiries.WaitFor(2), std::vector<std::string>({"fake/embed", "fake/llm-small"}));
  EXPECT_FALSE(HasReadyInstance(*registry, "fake/llm-small"));
  registry.reset();
}

// Time that moves while a maintenance pass runs is seen by the next pass at once. The pass's own
// expiry event moves the clock (the subscriber runs on the maintenance thread, after the pass read
// the time): before the fix the loop then waited for "now + tick" on a clock nobody moved again, so
// fake/llm-small never expired (the flake CI showed in the test above).
TEST(RegistryTtlTest, TimeThatMovesDuringAPassIsSeenByTheNextPass) {
  admission::SimulatedClock clock(absl::Now());
  EventBus bus;
  bool advanced = false;  // touched only on the maintenance thread
  Expiries expiries(&bus, [&](const Event& e) {
    if (e.model_key == "fake/embed" && !advanced) {
      advanced = true;
      clock.Advance(absl::Minutes(1));
    }
  });
  std::unique_ptr<DriverHostOps> host;
  std::unique_ptr<ModelRegistry> registry = MakeRegistry(&clock, &bus, &host);
  ASSERT_NE(registry, nullptr);
  UseOnce(*registry, "fake/llm-small");
  UseOnce(*registry, "fake/embed");

  clock.Advance(absl::Minutes(9) + absl::Seconds(2));
  EXPECT_EQ(expiries.WaitFor(2), std::vector<std::string>({"fake/embed", "fake/llm-small"}));
  registry.reset();
}

}  // namespace
}  // namespace lmgate::lifecycle
