// services/cluster/shared_flights: gateways A, B, C on one real redis-server. Simulated time for
// leads and waiters; pub/sub through a RedisSubscriber (waits on conditions, no sleeps).
#include "services/cluster/shared_flights.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate::cluster {
namespace {

constexpr char kFlight[] = "qwen/qwen3-4b#ctx=8192";

class SharedFlightsTest : public testing::Test {
 protected:
  void SetUp() override {
    auto s = testutil::RedisServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto url = ParseRedisUrl(server_->url());
    ASSERT_TRUE(url.ok());
    url_ = *url;
    SharedFlightsOptions o;
    o.lead_ttl = absl::Seconds(10);
    o.waiter_ttl = absl::Seconds(10);
    for (const char* g : {"A", "B", "C"}) {
      clients_.push_back(std::make_unique<RedisClient>(url_));
      gw_.push_back(std::make_unique<SharedFlights>(clients_.back().get(), "host-1", g, o));
    }
  }

  std::unique_ptr<testutil::RedisServer> server_;
  RedisUrl url_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<std::unique_ptr<SharedFlights>> gw_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(SharedFlightsTest, ThirtyFirstRequestsAcrossThreeGatewaysLeadOneLoad) {
  std::atomic<int> leaders{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 10; ++i) {
        auto role = gw_[g]->Join(kFlight, absl::StrCat("w", i), t0_);
        ASSERT_TRUE(role.ok()) << role.status();
        // A gateway's own later joins renew its lead: count the first only.
        if (role->leader && i == 0) ++leaders;
        if (!role->leader) {
          EXPECT_FALSE(role->leader_gateway.empty());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(leaders.load(), 1);
  EXPECT_EQ(*gw_[0]->Waiters(kFlight, t0_), 30);
}

TEST_F(SharedFlightsTest, FollowersGetProgressAndTheResult) {
  absl::Mutex mu;
  std::vector<FlightMessage> got;
  bool subscribed = false;
  SharedFlights& a = *gw_[0];
  RedisSubscriber sub(
      url_, {a.channel()},
      [&](const std::string&, const std::string& payload) {
        auto m = SharedFlights::ParseMessage(payload);
        ASSERT_TRUE(m.ok()) << m.status();
        absl::MutexLock lock(&mu);
        got.push_back(*m);
      },
      [&](bool s) {
        absl::MutexLock lock(&mu);
        subscribed = s;
      });
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&subscribed), testutil::Scaled(absl::Seconds(10))));
  }
  ASSERT_TRUE(a.Join(kFlight, "1", t0_)->leader);
  auto b = gw_[1]->Join(kFlight, "1", t0_);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->leader);
  EXPECT_EQ(b->leader_gateway, "A");
  ASSERT_TRUE(a.Progress(kFlight, "0.4").ok());
  EXPECT_EQ(gw_[1]->Finish(kFlight, "stolen").code(), absl::StatusCode::kFailedPrecondition)
      << "a follower finished the leader's load";
  ASSERT_TRUE(a.Finish(kFlight, "qwen/qwen3-4b:2").ok());
  {
    absl::MutexLock lock(&mu);
    auto two = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return got.size() >= 2; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&two), testutil::Scaled(absl::Seconds(5))));
    ASSERT_EQ(got.size(), 2u) << "the refused Finish published something";
    EXPECT_EQ(got[0].kind, "progress");
    EXPECT_EQ(got[0].payload, "0.4");
    EXPECT_EQ(got[1].kind, "done");
    EXPECT_EQ(got[1].flight, kFlight);
    EXPECT_EQ(got[1].gateway, "A");
    EXPECT_EQ(got[1].payload, "qwen/qwen3-4b:2");
  }
  // A follower that missed the message reads the result.
  EXPECT_EQ(*gw_[2]->Result(kFlight), std::optional<std::string>("qwen/qwen3-4b:2"));
  // After the flight, the next Join leads a new one (a failed load is tried again).
  auto c = gw_[2]->Join(kFlight, "9", t0_ + absl::Seconds(1));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->leader);
  EXPECT_EQ(*gw_[2]->Result(kFlight), std::nullopt);
}

TEST_F(SharedFlightsTest, ADeadLeadersLeadLapsesAndIsTakenOver) {
  ASSERT_TRUE(gw_[0]->Join(kFlight, "1", t0_)->leader);
  ASSERT_TRUE(gw_[0]->Heartbeat(kFlight, t0_ + absl::Seconds(5)).ok());
  EXPECT_FALSE(gw_[1]->Join(kFlight, "1", t0_ + absl::Seconds(14))->leader);  // renewed to 15 s
  // A dies: no heartbeat after 5 s. At 16 s B takes the load over.
  auto b = gw_[1]->Join(kFlight, "1", t0_ + absl::Seconds(16));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->leader);
  // If A was only slow, it learns it lost the lead, and cannot finish B's load.
  absl::Status hb = gw_[0]->Heartbeat(kFlight, t0_ + absl::Seconds(17));
  EXPECT_EQ(hb.code(), absl::StatusCode::kFailedPrecondition) << hb;
  EXPECT_EQ(gw_[0]->Finish(kFlight, "late").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(gw_[1]->Finish(kFlight, "ok").ok());
}

TEST_F(SharedFlightsTest, ALoadNobodyWaitsForIsVisibleToItsLeader) {
  ASSERT_TRUE(gw_[0]->Join(kFlight, "a1", t0_)->leader);
  ASSERT_TRUE(gw_[1]->Join(kFlight, "b1", t0_).ok());
  EXPECT_EQ(*gw_[0]->Waiters(kFlight, t0_), 2);
  ASSERT_TRUE(gw_[1]->RemoveWaiter(kFlight, "b1").ok());  // B's caller cancelled
  EXPECT_EQ(*gw_[0]->Waiters(kFlight, t0_), 1);
  ASSERT_TRUE(gw_[0]->RenewWaiters(kFlight, {"a1"}, t0_ + absl::Seconds(8)).ok());
  EXPECT_EQ(*gw_[0]->Waiters(kFlight, t0_ + absl::Seconds(17)), 1);
  // A's caller is gone and nobody renews: nobody waits anywhere, the leader may cancel.
  EXPECT_EQ(*gw_[0]->Waiters(kFlight, t0_ + absl::Seconds(19)), 0);
}

TEST_F(SharedFlightsTest, MessagesThatAreNotOursAreRefused) {
  for (const char* bad : {"", "[]", "{\"flight\":1}", "{\"flight\":\"x\",\"kind\":\"done\"}",
                          "not json"}) {
    EXPECT_EQ(SharedFlights::ParseMessage(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(SharedFlightsTest, RedisDownIsUnavailable) {
  server_->Stop();
  EXPECT_EQ(gw_[0]->Join(kFlight, "1", t0_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(gw_[0]->Finish(kFlight, "x").code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lmgate::cluster
