// ~ModelRegistry while loads are in flight: every load thread is owned and joined, so nothing
// touches the registry after it is gone (run under --config=asan). No gRPC, no network.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
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

// Counts the acquire callbacks, which may run on a load thread up to the registry's last step.
struct Outcomes {
  absl::Mutex mu;
  int done ABSL_GUARDED_BY(mu) = 0;
  int unavailable ABSL_GUARDED_BY(mu) = 0;
};

TEST(RegistryShutdownTest, DestroyedWhileLoadsAreInFlight) {
  constexpr int kIterations = 40;
  for (int it = 0; it < kIterations; ++it) {
    SCOPED_TRACE(absl::StrCat("iteration ", it));
    // Alternate: loads held upstream (the destructor cancels them), and loads that finish
    // while the registry is being destroyed.
    const bool hold = it % 2 == 0;
    EventBus bus;
    auto fake = std::make_unique<FakeDriver>(FakeDriver::Options{});
    FakeDriver* driver = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    DriverHostOps host(std::make_shared<backends::DriverSet>(std::move(drivers)));
    RegistryOptions options;
    options.refresh_interval = absl::ZeroDuration();
    options.tick = absl::Milliseconds(1);
    options.default_ttl = absl::Milliseconds(1);  // expiry unloads run on the maintenance thread
    auto created = ModelRegistry::Create(std::move(options), &host, &bus);
    ASSERT_TRUE(created.ok()) << created.status();
    std::unique_ptr<ModelRegistry> registry = *std::move(created);
    // A subscriber that reads the registry from its callback, as WatchModels and health do.
    std::atomic<ModelRegistry*> live{registry.get()};
    EventBus::SubscriberId sub = 0;
    sub = bus.Subscribe("", [&] {
      Event e;
      while (bus.Next(sub, &e)) {
        if (ModelRegistry* r = live.load()) (void)r->ModelReady(e.model_key);
      }
    });
    driver->HoldLoads(hold);

    Outcomes out;
    const std::vector<std::string> models = {"fake/llm-small", "fake/llm-large", "fake/embed"};
    constexpr int kAcquires = 12;
    for (int i = 0; i < kAcquires; ++i) {
      AcquireRequest req;
      req.model = models[i % models.size()];
      req.holder = absl::StrCat("r", i);
      registry->Acquire(Ctx(), req, [&out](absl::StatusOr<std::unique_ptr<Lease>> lease) {
        absl::MutexLock lock(&out.mu);
        ++out.done;
        out.unavailable += absl::IsUnavailable(lease.status());
        // The lease (if any) is released here, before the registry goes.
      });
    }
    // While loads are held: an explicit, blocking load from another thread, which the
    // destructor answers.
    std::thread explicit_load;
    if (hold) explicit_load = std::thread([&] {
      backends::LoadParams p;
      p.model_key = "fake/llm-small";
      p.identifier = "explicit";
      (void)registry->Load(Ctx(), DriverKind::kAuto, p, false, true, nullptr, nullptr);
    });
    if (hold) {
      ASSERT_TRUE(driver->WaitForHeldLoads(models.size() + 1, testutil::Scaled(absl::Seconds(10))));
    }
    live = nullptr;
    registry.reset();
    if (explicit_load.joinable()) explicit_load.join();
    bus.Unsubscribe(sub);
    absl::MutexLock lock(&out.mu);
    EXPECT_EQ(out.done, kAcquires);  // every callback ran, exactly once, before ~ModelRegistry
    if (hold) {
      EXPECT_EQ(out.unavailable, kAcquires);
    }
  }
}

}  // namespace
}  // namespace lmgate::lifecycle
