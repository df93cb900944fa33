// Lifecycle events are delivered after the registry lock is released, in the order the state
// changed: a subscriber may call back into the registry from its callback, and concurrent
// publishers never reorder the events of one instance. No gRPC, no network, no sleeps.
#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "services/lifecycle/event_outbox.h"
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

class RegistryEventsTest : public ::testing::Test {
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
    auto r = ModelRegistry::Create(std::move(options), host_.get(), &bus_);
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = *std::move(r);
  }
  void TearDown() override { registry_.reset(); }

  EventBus bus_;
  FakeDriver* fake_ = nullptr;
  std::unique_ptr<DriverHostOps> host_;
  std::unique_ptr<ModelRegistry> registry_;
};

// A subscriber that reads the registry and loads another model from inside its wake callback.
// While events were published under the registry mutex, the read blocked until the callback
// returned (a self-deadlock had the callback called the registry on its own thread); the helper
// thread and its bounded wait turn that into a failure instead of a hang.
TEST_F(RegistryEventsTest, SubscriberCallsBackIntoTheRegistryFromItsCallback) {
  Make();
  struct Seen {
    bool reentered_in_time = false;
    bool observed_ready = false;
    absl::Status second_load = absl::UnknownError("not run");
  };
  absl::Mutex mu;
  Seen seen;
  bool done = false;
  std::future<void> helper;
  EventBus::SubscriberId id = 0;
  std::atomic<bool> triggered{false};
  id = bus_.Subscribe("", [&] {
    Event e;
    while (bus_.Next(id, &e)) {
      if (e.kind != Event::Kind::kLoaded || e.model_key != "fake/llm-small") continue;
      if (triggered.exchange(true)) continue;
      const std::string instance = e.instance;
      absl::MutexLock lock(&mu);  // the helper reports under `mu`, after `helper` is set
      helper = std::async(std::launch::async, [&, instance] {
        Seen s;
        // The state the event describes: the instance is READY.
        for (const ModelSnapshot& m : registry_->Snapshot()) {
          if (m.info.key != "fake/llm-small") continue;
          for (const InstanceSnapshot& i : m.instances) {
            s.observed_ready |= i.info.identifier == instance && i.state == State::kReady;
          }
        }
        backends::LoadParams p;
        p.model_key = "fake/embed";
        s.second_load =
            registry_->Load(Ctx(), DriverKind::kAuto, p, false, false, nullptr, nullptr).status();
        absl::MutexLock lock(&mu);
        seen.observed_ready = s.observed_ready;
        seen.second_load = s.second_load;
        done = true;
      });
      // Inside the callback: the registry must answer while we wait here.
      seen.reentered_in_time = mu.AwaitWithTimeout(absl::Condition(&done),
                                                   testutil::Scaled(absl::Seconds(5)));
    }
  });
  backends::LoadParams p;
  p.model_key = "fake/llm-small";
  auto first = registry_->Load(Ctx(), DriverKind::kAuto, p, false, false, nullptr, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), testutil::Scaled(absl::Seconds(30))));
  }
  helper.wait();
  bus_.Unsubscribe(id);
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(seen.reentered_in_time)
      << "the subscriber's call into the registry did not return while its callback ran";
  EXPECT_TRUE(seen.observed_ready) << "the LOADED event's instance was not READY in Snapshot()";
  EXPECT_TRUE(seen.second_load.ok()) << seen.second_load;
}

// Many threads load and unload instances with their own identifiers at once; each instance's
// events must arrive as LOAD_STARTED… LOADED, UNLOAD_STARTED, UNLOADED, cycle after cycle.
TEST_F(RegistryEventsTest, ConcurrentPublishersKeepEachInstancesEventsInOrder) {
  Make();
  absl::Mutex mu;
  std::map<std::string, std::vector<Event::Kind>> by_instance;
  EventBus::SubscriberId id = 0;
  id = bus_.Subscribe("", [&] {
    Event e;
    while (bus_.Next(id, &e)) {
      if (e.instance.empty()) continue;
      absl::MutexLock lock(&mu);
      by_instance[e.instance].push_back(e.kind);
    }
  });
  constexpr int kThreads = 6;
  constexpr int kCycles = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCycles; ++c) {
        backends::LoadParams p;
        p.model_key = t % 2 ? "fake/embed" : "fake/llm-small";
        p.identifier = absl::StrCat("inst-", t);
        if (!registry_->Load(Ctx(), DriverKind::kAuto, p, false, false, nullptr, nullptr).ok()) {
          ++failures;
          continue;
        }
        if (!registry_->Unload(Ctx(), DriverKind::kAuto, p.identifier, false, false).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  bus_.Unsubscribe(id);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(by_instance.size(), static_cast<size_t>(kThreads));
  const std::vector<Event::Kind> cycle = {Event::Kind::kLoaded, Event::Kind::kUnloadStarted,
                                          Event::Kind::kUnloaded};
  for (const auto& [instance, kinds] : by_instance) {
    ASSERT_EQ(kinds.size(), cycle.size() * kCycles) << instance;
    for (size_t i = 0; i < kinds.size(); ++i) {
      ASSERT_EQ(EventKindName(kinds[i]), EventKindName(cycle[i % cycle.size()]))
          << instance << " event " << i;
    }
  }
}

// The outbox alone: events added under one lock by many threads come out in the order they
// were added, although every thread flushes after unlocking; a subscriber that adds from its
// callback gets its event delivered after the current one, by the outer flusher.
TEST(EventOutboxTest, DeliversInAddOrderUnderConcurrentFlushers) {
  EventBus bus(1 << 20);
  EventOutbox outbox(&bus);
  absl::Mutex state_mu;  // stands for the registry lock
  int next_seq = 0;
  std::vector<int> delivered;  // only the subscriber's callback touches it (one flusher)
  std::atomic<bool> overlap{false};
  std::atomic<int> in_callback{0};
  EventBus::SubscriberId id = 0;
  id = bus.Subscribe("", [&] {
    if (in_callback.fetch_add(1) != 0) overlap = true;
    Event e;
    while (bus.Next(id, &e)) {
      const int seq = static_cast<int>(e.progress);
      delivered.push_back(seq);
      if (e.reason == "echo") {
        Event echo;
        echo.reason = "reply";
        echo.progress = -1;
        outbox.Add(echo);  // from the callback: must not deliver inline (nested flush)
        outbox.Flush();
      }
    }
    in_callback.fetch_sub(1);
  });
  constexpr int kThreads = 8;
  constexpr int kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        {
          absl::MutexLock lock(&state_mu);
          Event e;
          e.progress = next_seq++;
          outbox.Add(std::move(e));
        }
        outbox.Flush();
      }
    });
  }
  for (auto& t : threads) t.join();
  Event echo;
  echo.reason = "echo";
  echo.progress = kThreads * kEach;
  outbox.Add(echo);
  outbox.Flush();
  EXPECT_FALSE(overlap.load()) << "two threads delivered at once";
  ASSERT_EQ(delivered.size(), static_cast<size_t>(kThreads * kEach + 2));
  for (int i = 0; i <= kThreads * kEach; ++i) ASSERT_EQ(delivered[i], i);
  EXPECT_EQ(delivered.back(), -1);  // the subscriber's own event, after the one it answered
  bus.Unsubscribe(id);
}

}  // namespace
}  // namespace lmgate::lifecycle
