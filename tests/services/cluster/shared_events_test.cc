// services/cluster/shared_events: two gateways' EventBuses joined through a real redis-server.
// Waits are on the bus's wake callback (a notification), bounded by a deadline.
#include "services/cluster/shared_events.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate::cluster {
namespace {

using lifecycle::Event;
using lifecycle::EventBus;
using lifecycle::State;
using testutil::Scaled;

// Collects a bus's events; Wait blocks until `n` arrived (or the deadline).
class Collector {
 public:
  explicit Collector(EventBus* bus) : bus_(bus) {
    id_ = bus_->Subscribe("", [this] {
      absl::MutexLock lock(&mu_);
      Event e;
      while (bus_->Next(id_, &e)) events_.push_back(e);
    });
  }
  ~Collector() { bus_->Unsubscribe(id_); }
  std::vector<Event> Wait(size_t n, absl::Duration within) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), within);
    return events_;
  }

 private:
  EventBus* const bus_;
  EventBus::SubscriberId id_ = 0;
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

Event Loaded(const std::string& instance) {
  Event e;
  e.kind = Event::Kind::kLoaded;
  e.model_key = "qwen/qwen3-4b";
  e.instance = instance;
  e.state = State::kReady;
  e.reason = "requested by tenant team";
  e.tenant = "team";
  e.duration = absl::Milliseconds(1500);
  return e;
}

class SharedEventsTest : public testing::Test {
 protected:
  void SetUp() override {
    auto s = testutil::RedisServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto url = ParseRedisUrl(server_->url());
    ASSERT_TRUE(url.ok());
    for (int i = 0; i < 2; ++i) {
      clients_.push_back(std::make_unique<RedisClient>(*url));
      buses_.push_back(std::make_unique<EventBus>());
      shared_.push_back(std::make_unique<SharedEvents>(
          clients_.back().get(), buses_.back().get(),
          SharedEventsOptions{"http://h:1234", i == 0 ? "gw-a" : "gw-b"}));
    }
    // Both subscriptions are live before anything is published (pub/sub keeps no history).
    const absl::Time deadline = absl::Now() + Scaled(absl::Seconds(5));
    while (!(shared_[0]->subscribed() && shared_[1]->subscribed()) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));  // polling interval, not synchronisation
    }
    ASSERT_TRUE(shared_[0]->subscribed() && shared_[1]->subscribed());
  }

  void TearDown() override {
    shared_.clear();
    buses_.clear();
  }

  std::unique_ptr<testutil::RedisServer> server_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<std::unique_ptr<EventBus>> buses_;
  std::vector<std::unique_ptr<SharedEvents>> shared_;
};

TEST_F(SharedEventsTest, AnEventReachesTheOtherGatewayAsItselfWithin100ms) {
  Collector a(buses_[0].get()), b(buses_[1].get());
  const absl::Time sent = absl::Now();
  buses_[0]->Publish(Loaded("qwen/qwen3-4b"));
  auto got = b.Wait(1, Scaled(absl::Seconds(2)));
  const absl::Duration took = absl::Now() - sent;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(took, Scaled(absl::Milliseconds(100)));
  const Event& e = got[0];
  EXPECT_EQ(e.kind, Event::Kind::kLoaded);
  EXPECT_TRUE(e.remote);
  EXPECT_EQ(e.model_key, "qwen/qwen3-4b");
  EXPECT_EQ(e.state, State::kReady);
  EXPECT_EQ(e.tenant, "team");
  EXPECT_EQ(e.reason, "requested by tenant team");
  EXPECT_EQ(e.duration, absl::Milliseconds(1500));
  // B does not send it back: A sees only its own, once, and B published nothing.
  buses_[1]->Publish(Loaded("other"));  // a marker that B's own events do go out
  auto at_a = a.Wait(2, Scaled(absl::Seconds(2)));
  ASSERT_EQ(at_a.size(), 2u);
  EXPECT_FALSE(at_a[0].remote);
  EXPECT_EQ(at_a[1].instance, "other");
  EXPECT_TRUE(at_a[1].remote);
  EXPECT_EQ(shared_[1]->published(), 1);
}

TEST_F(SharedEventsTest, TheLocalSyncsExternalChangeOfAnAnnouncedLoadIsAnEcho) {
  Collector b(buses_[1].get());
  buses_[0]->Publish(Loaded("qwen/qwen3-4b:2"));
  ASSERT_EQ(b.Wait(1, Scaled(absl::Seconds(2))).size(), 1u);
  // B's next sync finds the instance A loaded.
  Event ext;
  ext.kind = Event::Kind::kExternalChange;
  ext.model_key = "qwen/qwen3-4b";
  ext.instance = "qwen/qwen3-4b:2";
  ext.state = State::kReady;
  ext.reason = "loaded outside lmgate";
  buses_[1]->Publish(ext);
  // A change nobody announced stays an EXTERNAL_CHANGE.
  ext.instance = "made-in-the-app";
  buses_[1]->Publish(ext);
  auto got = b.Wait(3, Scaled(absl::Seconds(2)));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[1].echo);
  EXPECT_FALSE(got[1].remote);
  EXPECT_FALSE(got[2].echo);
  // Outside changes are not shared: every gateway's sync sees them.
  EXPECT_EQ(shared_[1]->published(), 0);
}

TEST(SharedEventsCodecTest, RoundTripsAndRefusesGarbage) {
  std::string from;
  auto e = DecodeEvent(EncodeEvent(Loaded("x"), "gw-1"), &from);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(from, "gw-1");
  EXPECT_EQ(e->instance, "x");
  for (const char* bad : {"", "nope", "{}", R"({"v":1,"kind":"bogus"})", "[[[[[[[[", "{\"v\":2}"}) {
    EXPECT_FALSE(DecodeEvent(bad, &from).has_value()) << bad;
  }
}

}  // namespace
}  // namespace lmgate::cluster
