// services/cluster/shared_quota: three RedisClients stand for three lmgates on one host, against a
// real redis-server. Time is passed explicitly (a simulated clock), so nothing sleeps.
#include "services/cluster/shared_quota.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/admission/retry_after.h"
#include "tests/util/redis_server.h"

namespace lmgate::cluster {
namespace {

class SharedQuotaTest : public testing::Test {
 protected:
  void SetUp() override {
    auto s = testutil::RedisServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto url = ParseRedisUrl(server_->url());
    ASSERT_TRUE(url.ok());
    for (int i = 0; i < 3; ++i) {
      clients_.push_back(std::make_unique<RedisClient>(*url));
      SharedQuotaOptions o;
      o.permit_ttl = absl::Seconds(30);
      gateways_.push_back(std::make_unique<SharedQuota>(clients_.back().get(), "host-a", o));
    }
  }

  std::unique_ptr<testutil::RedisServer> server_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<std::unique_ptr<SharedQuota>> gateways_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(SharedQuotaTest, RequestsPerMinuteAreExactAcrossGateways) {
  QuotaLimits l;
  l.requests_per_minute = 10;
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 10; ++i) {
        absl::Duration retry;
        absl::Status st = gateways_[g]->Admit("team", l, absl::StrCat("g", g, "-", i), &retry, t0_);
        if (st.ok()) {
          ++admitted;
        } else {
          EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
          EXPECT_NE(st.message().find("10 requests/minute"), std::string::npos) << st;
          EXPECT_GT(retry, absl::ZeroDuration());
          EXPECT_TRUE(admission::RetryAfterMs(st).has_value());
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(refused.load(), 20);
  // The bucket refills continuously: 6 s later one more request fits, at any gateway.
  EXPECT_FALSE(gateways_[1]->Admit("team", l, "late-0", nullptr, t0_ + absl::Seconds(5)).ok());
  EXPECT_TRUE(gateways_[2]->Admit("team", l, "late-1", nullptr, t0_ + absl::Seconds(6)).ok());
  // Another host's gateways do not share it.
  SharedQuota other(clients_[0].get(), "host-b");
  EXPECT_TRUE(other.Admit("team", l, "b-0", nullptr, t0_).ok());
}

TEST_F(SharedQuotaTest, ConcurrentStreamsAreExactAndReleased) {
  QuotaLimits l;
  l.concurrent_streams = 2;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 5; ++i) {
        if (gateways_[g]->Admit("team", l, absl::StrCat("g", g, "-", i), nullptr, t0_).ok()) {
          ++admitted;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 2);
  EXPECT_EQ(*gateways_[0]->Streams("team", t0_), 2);
  // Find which permits were taken and release one: a new stream fits at another gateway.
  auto members = clients_[0]->Command({"ZRANGE", "lmgate:{host-a}:streams:team", "0", "-1"});
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->elements.size(), 2u);
  ASSERT_TRUE(gateways_[0]->Release("team", members->elements[0].str).ok());
  EXPECT_TRUE(gateways_[2]->Admit("team", l, "next", nullptr, t0_).ok());
  EXPECT_FALSE(gateways_[1]->Admit("team", l, "over", nullptr, t0_).ok());
}

TEST_F(SharedQuotaTest, ADeadGatewaysPermitsLapse) {
  QuotaLimits l;
  l.concurrent_streams = 1;
  ASSERT_TRUE(gateways_[0]->Admit("team", l, "dead-1", nullptr, t0_).ok());
  ASSERT_TRUE(gateways_[1]->Admit("other", l, "alive-1", nullptr, t0_).ok());
  EXPECT_FALSE(gateways_[1]->Admit("team", l, "x", nullptr, t0_ + absl::Seconds(20)).ok());
  // Gateway 1 renews its permit; gateway 0 is dead and does not.
  EXPECT_EQ(*gateways_[1]->Renew("other", {"alive-1"}, t0_ + absl::Seconds(20)), 1);
  EXPECT_TRUE(gateways_[1]->Admit("team", l, "x", nullptr, t0_ + absl::Seconds(31)).ok());
  EXPECT_FALSE(gateways_[0]->Admit("other", l, "y", nullptr, t0_ + absl::Seconds(31)).ok())
      << "a renewed permit lapsed";
  // A lapsed permit is not revived by a late renew.
  EXPECT_EQ(*gateways_[0]->Renew("team", {"dead-1"}, t0_ + absl::Seconds(32)), 0);
}

TEST_F(SharedQuotaTest, TokensPerMinuteChargedAfterTheFact) {
  QuotaLimits l;
  l.tokens_per_minute = 600;
  ASSERT_TRUE(gateways_[0]->Admit("team", l, "a", nullptr, t0_).ok());
  ASSERT_TRUE(gateways_[0]->Charge("team", l, 900, t0_).ok());  // overdrawn by 300
  absl::Duration retry;
  absl::Status st = gateways_[1]->Admit("team", l, "b", &retry, t0_ + absl::Seconds(1));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_NE(st.message().find("600 tokens/minute"), std::string::npos) << st;
  // -300 + 10/s: positive after 30 s from the charge.
  EXPECT_GE(retry, absl::Seconds(28));
  EXPECT_LE(retry, absl::Seconds(30));
  EXPECT_FALSE(gateways_[2]->Admit("team", l, "c", nullptr, t0_ + absl::Seconds(29)).ok());
  EXPECT_TRUE(gateways_[2]->Admit("team", l, "d", nullptr, t0_ + absl::Seconds(31)).ok());
}

TEST_F(SharedQuotaTest, KeysExpireAndRedisTimeIsUsedByDefault) {
  QuotaLimits l;
  l.requests_per_minute = 5;
  l.concurrent_streams = 3;
  ASSERT_TRUE(gateways_[0]->Admit("team", l, "a").ok());  // Redis's clock
  auto pttl_q = clients_[0]->Command({"PTTL", "lmgate:{host-a}:quota:team"});
  auto pttl_s = clients_[0]->Command({"PTTL", "lmgate:{host-a}:streams:team"});
  ASSERT_TRUE(pttl_q.ok() && pttl_s.ok());
  EXPECT_GT(pttl_q->integer, 0) << "the bucket key never expires";
  EXPECT_LE(pttl_q->integer, 61'000);
  EXPECT_GT(pttl_s->integer, 0) << "the streams key never expires";
  EXPECT_LE(pttl_s->integer, 31'000);
}

TEST_F(SharedQuotaTest, RedisDownIsUnavailable) {
  QuotaLimits l;
  l.requests_per_minute = 5;
  server_->Stop();
  absl::Status st = gateways_[0]->Admit("team", l, "a", nullptr, t0_);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("shared quota of tenant team"), std::string::npos) << st;
}

}  // namespace
}  // namespace lmgate::cluster
