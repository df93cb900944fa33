// ModelRegistry against the in-memory FakeDriver: single-flight, cancellation, leases, TTL,
// eviction, host sync. No gRPC, no network.
#include "services/lifecycle/registry.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "tests/util/skewed_clock.h"

namespace lmgate::lifecycle {
namespace {

using backends::FakeDriver;

// Collects events and lets a test wait for one of a kind.
class EventLog {
 public:
  explicit EventLog(EventBus* bus) : bus_(bus) {
    id_ = bus_->Subscribe("", [this] { Drain(); });
  }
  ~EventLog() { bus_->Unsubscribe(id_); }

  bool WaitFor(Event::Kind kind, int count = 1, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return Count(kind) >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  int count(Event::Kind kind) {
    absl::MutexLock lock(&mu_);
    return Count(kind);
  }

 private:
  void Drain() {
    Event e;
    while (bus_->Next(id_, &e)) {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    }
  }
  int Count(Event::Kind kind) ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    int n = 0;
    for (const auto& e : events_) n += e.kind == kind;
    return n;
  }
  EventBus* bus_;
  EventBus::SubscriberId id_;
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

// The host as the registry sees it, counting listings; a held listing waits for release (or
// its caller's deadline).
class CountingHostOps : public HostOps {
 public:
  explicit CountingHostOps(HostOps* inner) : inner_(inner) {}
  absl::StatusOr<backends::HostModels> List(const CallContext& ctx) override {
    {
      absl::MutexLock lock(&mu_);
      ++lists_;
      auto open = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !hold_; };
      if (!mu_.AwaitWithDeadline(absl::Condition(&open), ctx.deadline)) {
        return absl::DeadlineExceededError("held listing");
      }
    }
    return inner_->List(ctx);
  }
  absl::StatusOr<backends::InstanceInfo> Load(const CallContext& ctx, DriverKind driver,
                                              const backends::LoadParams& params,
                                              const backends::LoadProgressFn& progress,
                                              DriverKind* used) override {
    return inner_->Load(ctx, driver, params, progress, used);
  }
  absl::Status Unload(const CallContext& ctx, DriverKind driver, const std::string& identifier,
                      DriverKind* used) override {
    return inner_->Unload(ctx, driver, identifier, used);
  }
  void Hold(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  int lists() {
    absl::MutexLock lock(&mu_);
    return lists_;
  }
  bool WaitForLists(int n) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return lists_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }

 private:
  HostOps* const inner_;
  absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
};

int ThreadCount() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

class RegistryTest : public ::testing::Test {
 protected:
  void Make(RegistryOptions options = {}) {
    auto fake = std::make_unique<FakeDriver>(FakeDriver::Options{});
    fake_ = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    host_ = std::make_unique<DriverHostOps>(
        std::make_shared<backends::DriverSet>(std::move(drivers)));
    counting_ = std::make_unique<CountingHostOps>(host_.get());
    log_ = std::make_unique<EventLog>(&bus_);
    options.refresh_interval = absl::ZeroDuration();
    if (options.tick == absl::Milliseconds(250)) options.tick = absl::Milliseconds(5);
    auto r = ModelRegistry::Create(std::move(options), counting_.get(), &bus_);
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = *std::move(r);
  }
  void TearDown() override {
    registry_.reset();
    log_.reset();
  }

  static CallContext Ctx() {
    CallContext c;
    c.cancel = std::make_shared<backends::CancelToken>();
    c.request_id = "test";
    return c;
  }
  AcquireRequest Req(const std::string& model, const std::string& holder = "req-1") {
    AcquireRequest r;
    r.model = model;
    r.holder = holder;
    return r;
  }

  EventBus bus_;
  FakeDriver* fake_ = nullptr;
  std::unique_ptr<DriverHostOps> host_;
  std::unique_ptr<CountingHostOps> counting_;
  std::unique_ptr<EventLog> log_;
  // A test's clock must outlive the registry, whose maintenance thread reads it until
  // TearDown (a clock on the test body's stack was read after the body returned: ASan
  // stack-use-after-return in the CI run).
  testutil::SkewedClock clock_;
  std::unique_ptr<ModelRegistry> registry_;
};

TEST_F(RegistryTest, FiftyConcurrentRequestsShareOneLoad) {
  Make();
  fake_->HoldLoads(true);
  constexpr int kCallers = 50;
  absl::Mutex mu;
  int ok = 0;
  std::vector<std::unique_ptr<Lease>> leases;
  for (int i = 0; i < kCallers; ++i) {
    registry_->Acquire(Ctx(), Req("fake/llm-small", "r" + std::to_string(i)),
                       [&](absl::StatusOr<std::unique_ptr<Lease>> l) {
                         absl::MutexLock lock(&mu);
                         if (l.ok()) {
                           ++ok;
                           leases.push_back(*std::move(l));
                         }
                       });
  }
  ASSERT_TRUE(fake_->WaitForHeldLoads(1, absl::Seconds(10)));
  auto snap = registry_->Get("fake/llm-small");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->state, State::kLoading);
  fake_->HoldLoads(false);
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return ok == kCallers; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(10)));
  }
  EXPECT_EQ(fake_->loads_started(), 1);
  snap = registry_->Get("fake/llm-small");
  ASSERT_EQ(snap->instances.size(), 1u);
  EXPECT_EQ(snap->state, State::kReady);
  EXPECT_EQ(snap->instances[0].in_flight, kCallers);
  leases.clear();
  EXPECT_EQ(registry_->Get("fake/llm-small")->instances[0].in_flight, 0);
}

TEST_F(RegistryTest, LoadIsCancelledWhenEveryWaiterLeaves) {
  Make();
  fake_->HoldLoads(true);
  std::vector<CallContext> ctxs(3, Ctx());
  for (auto& c : ctxs) c.cancel = std::make_shared<backends::CancelToken>();
  std::atomic<int> cancelled{0};
  for (auto& c : ctxs) {
    registry_->Acquire(c, Req("fake/llm-small"), [&](absl::StatusOr<std::unique_ptr<Lease>> l) {
      if (absl::IsCancelled(l.status())) ++cancelled;
    });
  }
  ASSERT_TRUE(fake_->WaitForHeldLoads(1, absl::Seconds(10)));
  ctxs[0].cancel->Cancel();
  ctxs[1].cancel->Cancel();
  EXPECT_EQ(log_->count(Event::Kind::kLoadCancelled), 0);  // one waiter is left
  ctxs[2].cancel->Cancel();
  EXPECT_EQ(cancelled.load(), 3);
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kLoadCancelled));
  EXPECT_EQ(registry_->Get("fake/llm-small")->instances.size(), 0u);
  EXPECT_EQ(registry_->Get("fake/llm-small")->state, State::kNotLoaded);
}

TEST_F(RegistryTest, UnknownModelIsNotFoundWithSuggestions) {
  Make();
  auto l = registry_->AcquireBlocking(Ctx(), Req("fake/llm-smal"));
  EXPECT_EQ(l.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(l.status().message().find("fake/llm-small"), std::string::npos) << l.status();
  EXPECT_EQ(fake_->loads_started(), 0);
}

TEST_F(RegistryTest, ConcurrentRefreshesShareOneListing) {
  Make();
  const int lists = counting_->lists();  // the initial sync
  counting_->Hold(true);
  absl::Status leader;
  std::thread first([&] { leader = registry_->Refresh(Ctx()); });
  ASSERT_TRUE(counting_->WaitForLists(lists + 1));
  // While that listing is in flight, every other refresh waits for it: with a short deadline
  // each gives up waiting, and none sends a listing of its own (it would be counted).
  constexpr int kOthers = 20;
  std::vector<std::thread> others;
  std::vector<absl::Status> results(kOthers);
  for (int i = 0; i < kOthers; ++i) {
    others.emplace_back([&, i] {
      CallContext c = Ctx();
      c.deadline = absl::Now() + absl::Milliseconds(50);
      results[i] = registry_->Refresh(c);
    });
  }
  for (auto& t : others) t.join();
  EXPECT_EQ(counting_->lists(), lists + 1);
  for (const auto& st : results) {
    EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
    EXPECT_NE(st.message().find("re-read"), std::string::npos) << st;
  }
  counting_->Hold(false);
  first.join();
  EXPECT_TRUE(leader.ok()) << leader;
  EXPECT_EQ(counting_->lists(), lists + 1);
}

TEST_F(RegistryTest, UnknownNamesAreAnsweredFromAFreshListingAndShareOneReRead) {
  RegistryOptions o;
  o.unknown_model_cache = absl::Seconds(2);
  o.clock = &clock_;
  Make(std::move(o));
  const int lists = counting_->lists();
  const int threads = ThreadCount();
  absl::Mutex mu;
  int not_found = 0;
  std::vector<absl::Status> other;
  auto count = [&](absl::StatusOr<std::unique_ptr<Lease>> l) {
    absl::MutexLock lock(&mu);
    if (absl::IsNotFound(l.status()) &&
        l.status().message().find("is not downloaded") != std::string::npos) {
      ++not_found;
    } else {
      other.push_back(l.status());
    }
  };
  // Fresh listing: answered inline, no listing, no thread, no event.
  for (int i = 0; i < 200; ++i) {
    registry_->Acquire(Ctx(), Req(absl::StrCat("nosuch/fresh-", i)), count);
  }
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(not_found, 200);
  }
  EXPECT_EQ(counting_->lists(), lists);
  EXPECT_EQ(log_->count(Event::Kind::kLoadStarted), 0);

  // Stale listing: every miss waits for one re-read by the maintenance thread.
  clock_.set_skew(absl::Seconds(3));
  counting_->Hold(true);
  CallContext cancelled = Ctx();
  registry_->Acquire(cancelled, Req("nosuch/cancelled"), count);
  for (int i = 0; i < 200; ++i) {
    registry_->Acquire(Ctx(), Req(absl::StrCat("nosuch/stale-", i)), count);
  }
  ASSERT_TRUE(counting_->WaitForLists(lists + 1));
  EXPECT_EQ(ThreadCount(), threads);  // nothing started per name
  cancelled.cancel->Cancel();         // a waiting miss can still be cancelled
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(other.size(), 1u);
    EXPECT_EQ(other[0].code(), absl::StatusCode::kCancelled) << other[0];
    EXPECT_EQ(not_found, 200);
  }
  counting_->Hold(false);
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return not_found == 400; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(10)));
  }
  EXPECT_EQ(counting_->lists(), lists + 1);
  // That listing is fresh again: more misses, an explicit load and a known model cost nothing.
  for (int i = 0; i < 100; ++i) {
    registry_->Acquire(Ctx(), Req(absl::StrCat("nosuch/again-", i)), count);
  }
  backends::LoadParams p;
  p.model_key = "nosuch/explicit";
  auto loaded = registry_->Load(Ctx(), DriverKind::kAuto, p, false, false, nullptr, nullptr);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound) << loaded.status();
  EXPECT_TRUE(registry_->AcquireBlocking(Ctx(), Req("fake/llm-small")).ok());
  EXPECT_EQ(counting_->lists(), lists + 1);
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(not_found, 500);
  }
  EXPECT_EQ(log_->count(Event::Kind::kLoadStarted), 1);  // fake/llm-small's
  EXPECT_EQ(registry_->KnownModelKey("nosuch/again-1"), "");
  EXPECT_EQ(registry_->KnownModelKey("fake/llm-small"), "fake/llm-small");
  EXPECT_EQ(registry_->Snapshot().size(), 3u);  // the host's catalogue, nothing per name
}

TEST_F(RegistryTest, LeasedInstanceIsNotUnloadedUnlessForced) {
  Make();
  std::atomic<bool> forced{false};
  AcquireRequest req = Req("fake/llm-small", "chat-42");
  req.on_force_unload = [&] { forced = true; };
  auto lease = registry_->AcquireBlocking(Ctx(), req);
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto st = registry_->Unload(Ctx(), DriverKind::kAuto, "fake/llm-small", false, false);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.status().message().find("chat-42"), std::string::npos) << st.status();
  EXPECT_EQ(fake_->unloads(), 0);
  st = registry_->Unload(Ctx(), DriverKind::kAuto, "fake/llm-small", false, true);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(forced.load());
  EXPECT_EQ(fake_->unloads(), 1);
  lease->reset();  // releasing a lease on an unloaded instance is harmless
}

TEST_F(RegistryTest, IdleTtlUnloads) {
  RegistryOptions o;
  o.default_ttl = absl::Milliseconds(30);
  Make(o);
  auto lease = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
  ASSERT_TRUE(lease.ok());
  lease->reset();
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kExpired));
  EXPECT_EQ(fake_->unloads(), 1);
  EXPECT_EQ(registry_->Get("fake/llm-small")->state, State::kNotLoaded);
}

TEST_F(RegistryTest, PinnedModelsDoNotExpire) {
  RegistryOptions o;
  o.default_ttl = absl::Milliseconds(1);
  o.models["fake/llm-small"].keep_loaded = true;
  Make(o);
  ASSERT_TRUE(registry_->AcquireBlocking(Ctx(), Req("fake/llm-small")).ok());
  auto other = registry_->AcquireBlocking(Ctx(), Req("fake/llm-large"));
  ASSERT_TRUE(other.ok());
  other->reset();
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kExpired));  // llm-large went, llm-small stays
  EXPECT_EQ(registry_->Get("fake/llm-small")->state, State::kReady);
}

// keep_loaded models load at start without a request, a request meanwhile shares that load, and
// after the host lost the instance (restarted) the next sync loads it again (issue 16).
TEST_F(RegistryTest, PinnedModelsLoadAtStartAndAfterTheHostLostThem) {
  RegistryOptions o;
  o.models["fake/llm-small"].keep_loaded = true;
  Make(o);
  auto lease = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));  // joins or finds it
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kLoaded));
  EXPECT_EQ(fake_->loads_started(), 1);
  EXPECT_TRUE(registry_->ModelReady("fake/llm-small"));
  EXPECT_TRUE(registry_->Get("fake/llm-small")->instances[0].keep_loaded);
  lease->reset();
  // The host forgets it (LM Studio restarted): the next sync sees it gone and loads it again.
  const std::string id = registry_->Get("fake/llm-small")->instances[0].info.identifier;
  ASSERT_TRUE(fake_->Unload(Ctx(), id).ok());
  ASSERT_TRUE(registry_->Refresh(Ctx()).ok());
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kLoaded, 2));
  EXPECT_EQ(fake_->loads_started(), 2);
  EXPECT_TRUE(registry_->ModelReady("fake/llm-small"));
}

// Without a request and without the fix, nothing loads a pinned model until one arrives.
TEST_F(RegistryTest, PinnedModelLoadsWithoutARequest) {
  RegistryOptions o;
  o.models["fake/llm-small"].keep_loaded = true;
  Make(o);
  ASSERT_TRUE(log_->WaitFor(Event::Kind::kLoaded, 1, absl::Seconds(5)));
  EXPECT_EQ(fake_->loads_started(), 1);
}

TEST_F(RegistryTest, CapacityEvictsTheLeastRecentlyUsedIdleModel) {
  RegistryOptions o;
  o.max_loaded_models = 1;
  Make(o);
  auto a = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
  ASSERT_TRUE(a.ok());
  a->reset();
  auto b = registry_->AcquireBlocking(Ctx(), Req("fake/llm-large"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(log_->count(Event::Kind::kEvicted), 1);
  EXPECT_EQ(registry_->Get("fake/llm-small")->state, State::kNotLoaded);
}

TEST_F(RegistryTest, CapacityWaitsForALeaseThenGivesUpAtTheDeadline) {
  RegistryOptions o;
  o.max_loaded_models = 1;
  Make(o);
  auto a = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
  ASSERT_TRUE(a.ok());
  CallContext c = Ctx();
  c.deadline = absl::Now() + absl::Milliseconds(100);
  auto b = registry_->AcquireBlocking(c, Req("fake/llm-large"));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDeadlineExceeded) << b.status();
  EXPECT_EQ(registry_->Get("fake/llm-small")->state, State::kReady);
}

TEST_F(RegistryTest, SeesChangesMadeOnTheHost) {
  Make();
  fake_->AddLoadedExternally("fake/llm-large");
  ASSERT_TRUE(registry_->Refresh(Ctx()).ok());
  EXPECT_EQ(registry_->Get("fake/llm-large")->state, State::kReady);
  EXPECT_EQ(log_->count(Event::Kind::kExternalChange), 1);
  // Acquire uses it without a load.
  ASSERT_TRUE(registry_->AcquireBlocking(Ctx(), Req("fake/llm-large")).ok());
  EXPECT_EQ(fake_->loads_started(), 0);
}

TEST_F(RegistryTest, ExplicitLoadIsIdempotentAndNewInstanceAddsOne) {
  Make();
  std::vector<double> progress;
  backends::LoadParams p;
  p.model_key = "fake/llm-small";
  p.context_length = 2048;
  auto a = registry_->Load(Ctx(), DriverKind::kAuto, p, false, false,
                           [&](double f) { progress.push_back(f); }, nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(progress.empty());
  EXPECT_EQ(a->info.context_length, 2048);
  auto again = registry_->Load(Ctx(), DriverKind::kAuto, p, false, false, nullptr, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(fake_->loads_started(), 1);
  auto second = registry_->Load(Ctx(), DriverKind::kAuto, p, false, true, nullptr, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->info.identifier, "fake/llm-small:2");
  // Requests spread over the two instances.
  auto l1 = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
  auto l2 = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_NE((*l1)->instance(), (*l2)->instance());
  auto st = registry_->Unload(Ctx(), DriverKind::kAuto, "fake/llm-small", false, true);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);  // two instances
}

TEST_F(RegistryTest, LoadChatUnloadReloadTenTimes) {
  Make();
  for (int i = 0; i < 10; ++i) {
    auto lease = registry_->AcquireBlocking(Ctx(), Req("fake/llm-small"));
    ASSERT_TRUE(lease.ok()) << i << ": " << lease.status();
    lease->reset();
    auto st = registry_->Unload(Ctx(), DriverKind::kAuto, "fake/llm-small", false, false);
    ASSERT_TRUE(st.ok()) << i << ": " << st.status();
  }
  EXPECT_EQ(fake_->loads_started(), 10);
  EXPECT_EQ(fake_->unloads(), 10);
}

TEST_F(RegistryTest, StormOfLoadsUnloadsAndRequestsStaysConsistent) {
  Make();
  std::atomic<int> results{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        CallContext c = Ctx();
        c.deadline = absl::Now() + absl::Seconds(20);
        switch ((t + i) % 3) {
          case 0: {
            auto l = registry_->AcquireBlocking(c, Req("fake/llm-small"));
            (void)l;
            break;
          }
          case 1: {
            backends::LoadParams p;
            p.model_key = "fake/llm-small";
            (void)registry_->Load(c, DriverKind::kAuto, p, false, false, nullptr, nullptr);
            break;
          }
          case 2:
            (void)registry_->Unload(c, DriverKind::kAuto, "fake/llm-small", true, i % 2 == 0);
            break;
        }
        ++results;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(results.load(), 180);
  auto snap = registry_->Get("fake/llm-small");
  ASSERT_TRUE(snap.ok());
  for (const auto& i : snap->instances) EXPECT_EQ(i.in_flight, 0);
  // The registry and the host agree after the storm.
  ASSERT_TRUE(registry_->Refresh(Ctx()).ok());
  auto host = host_->List(Ctx());
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(registry_->Get("fake/llm-small")->instances.size(), host->loaded.size());
}

// A driver that answers every lifecycle call with one status.
class StatusDriver : public backends::DriverBase {
 public:
  StatusDriver(DriverKind kind, absl::Status status) : kind_(kind), status_(std::move(status)) {}
  DriverKind kind() const override { return kind_; }
  backends::Capabilities capabilities() const override {
    backends::Capabilities c;
    c.list_models = c.load = c.unload = true;
    return c;
  }
  absl::StatusOr<backends::HostModels> ListModels(const CallContext&) override { return status_; }
  absl::StatusOr<backends::InstanceInfo> Load(const CallContext&, const backends::LoadParams&,
                                              const backends::LoadProgressFn&) override {
    return status_;
  }
  absl::Status Unload(const CallContext&, const std::string&) override { return status_; }

 private:
  DriverKind kind_;
  absl::Status status_;
};

TEST(DriverHostOpsTest, FallbackThatCannotRunDoesNotHideAnUnreachableHost) {
  // LM Studio down (sdk_ws: UNAVAILABLE) and no `lms` installed (cli: FAILED_PRECONDITION):
  // callers hear that the host is unreachable, not that an optional tool is missing.
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  drivers.push_back(std::make_unique<StatusDriver>(
      DriverKind::kSdk, absl::UnavailableError("cannot connect to LM Studio")));
  drivers.push_back(std::make_unique<StatusDriver>(
      DriverKind::kCli, absl::FailedPreconditionError("`lms` cannot be run")));
  DriverHostOps host(std::make_shared<backends::DriverSet>(std::move(drivers)));
  CallContext ctx;
  EXPECT_EQ(host.List(ctx).status().message(), "cannot connect to LM Studio");
  DriverKind used = DriverKind::kAuto;
  backends::LoadParams params;
  params.model_key = "m";
  absl::Status load = host.Load(ctx, DriverKind::kAuto, params, nullptr, &used).status();
  EXPECT_EQ(load.code(), absl::StatusCode::kUnavailable) << load;
  EXPECT_EQ(used, DriverKind::kSdk);
  used = DriverKind::kAuto;
  EXPECT_EQ(host.Unload(ctx, DriverKind::kAuto, "m", &used).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(used, DriverKind::kSdk);  // the driver whose UNAVAILABLE is reported
  // Asked for explicitly, the cli driver's own answer stands.
  EXPECT_EQ(host.Unload(ctx, DriverKind::kCli, "m", nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DriverHostOpsTest, OtherFallbackErrorsStand) {
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  drivers.push_back(std::make_unique<StatusDriver>(DriverKind::kSdk, absl::UnavailableError("down")));
  drivers.push_back(std::make_unique<StatusDriver>(DriverKind::kCli, absl::NotFoundError("no model")));
  DriverHostOps host(std::make_shared<backends::DriverSet>(std::move(drivers)));
  DriverKind used = DriverKind::kAuto;
  EXPECT_EQ(host.Unload({}, DriverKind::kAuto, "m", &used).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(used, DriverKind::kCli);
}

}  // namespace
}  // namespace lmgate::lifecycle
