// services/cluster/cluster_quota: the admission::Quotas of several lmgates on one host, three
// ClusterQuotas (each with its own RedisClient) standing for three gateways, against a real
// redis-server. Waits poll a condition with a deadline; heartbeats are short and scaled.
#include "services/cluster/cluster_quota.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/admission/retry_after.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate::cluster {
namespace {

using admission::QuotaPermit;
using testutil::Scaled;

// Polls `cond` until it holds or `within` passes; true if it held.
template <typename Fn>
bool Eventually(Fn cond, absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));  // polling interval, not synchronisation
  }
  return cond();
}

class ClusterQuotaTest : public testing::Test {
 protected:
  void SetUp() override {
    auto s = testutil::RedisServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto url = ParseRedisUrl(server_->url());
    ASSERT_TRUE(url.ok());
    url_ = *url;
  }

  // A gateway: its own connection and quotas.
  ClusterQuotas* AddGateway(OnRedisError on_error = OnRedisError::kOpen) {
    RedisOptions ro;
    ro.connect_timeout = ro.command_timeout = Scaled(absl::Milliseconds(200));
    clients_.push_back(std::make_unique<RedisClient>(url_, ro));
    ClusterQuotaOptions o;
    o.ns = "http://127.0.0.1:1234";
    o.gateway_id = absl::StrCat("gw", gateways_.size());
    o.on_redis_error = on_error;
    o.heartbeat = heartbeat_;
    o.retry_interval = Scaled(absl::Milliseconds(50));
    gateways_.push_back(std::make_unique<ClusterQuotas>(clients_.back().get(), o));
    return gateways_.back().get();
  }

  int64_t Streams(const std::string& tenant) {
    RedisClient c(url_);
    SharedQuota q(&c, "http://127.0.0.1:1234");
    auto n = q.Streams(tenant);
    return n.ok() ? *n : -1;
  }

  const absl::Duration heartbeat_ = Scaled(absl::Milliseconds(100));
  std::unique_ptr<testutil::RedisServer> server_;
  RedisUrl url_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  // Destroyed before the clients (declared after them).
  std::vector<std::unique_ptr<ClusterQuotas>> gateways_;
};

admission::Tenant Team(int rpm, int streams) {
  admission::Tenant t;
  t.name = "team";
  t.limits.requests_per_minute = rpm;
  t.limits.concurrent_streams = streams;
  return t;
}

TEST_F(ClusterQuotaTest, RequestsAndStreamsAreExactAcrossThreeGateways) {
  for (int i = 0; i < 3; ++i) AddGateway();
  const admission::Tenant rpm = Team(10, 0);
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 10; ++i) {
        auto p = gateways_[g]->Admit(rpm);
        if (p.ok()) {
          ++admitted;
        } else {
          EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted) << p.status();
          EXPECT_TRUE(admission::RetryAfterMs(p.status()).has_value());
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(refused.load(), 20);

  admission::Tenant two = Team(0, 2);
  two.name = "streams";
  std::vector<std::unique_ptr<QuotaPermit>> held;
  for (int g = 0; g < 3; ++g) {
    for (int i = 0; i < 2; ++i) {
      auto p = gateways_[g]->Admit(two);
      if (p.ok()) held.push_back(*std::move(p));
    }
  }
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(Streams("streams"), 2);
  held.pop_back();  // released on destruction: another gateway may take it
  EXPECT_EQ(Streams("streams"), 1);
  auto again = gateways_[2]->Admit(two);
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(gateways_[1]->Admit(two).ok());
  for (auto& g : gateways_) EXPECT_EQ(g->stats().redis_errors, 0);
}

// A gateway that dies without releasing (kill -9): its permit is not renewed and lapses within
// 3 heartbeats, while the live gateway's own permit is renewed past that.
TEST_F(ClusterQuotaTest, ADeadGatewaysPermitLapsesWithinThreeHeartbeats) {
  ClusterQuotas* alive = AddGateway();
  const admission::Tenant t = Team(0, 2);
  auto mine = alive->Admit(t);
  ASSERT_TRUE(mine.ok()) << mine.status();
  RedisClient dead_client(url_);
  SharedQuotaOptions so;
  so.permit_ttl = 3 * heartbeat_;
  SharedQuota dead(&dead_client, "http://127.0.0.1:1234", so);
  QuotaLimits l;
  l.concurrent_streams = 2;
  ASSERT_TRUE(dead.Admit("team", l, "dead:0").ok());
  const absl::Time died = absl::Now();
  EXPECT_FALSE(alive->Admit(t).ok());
  std::unique_ptr<QuotaPermit> taken;
  ASSERT_TRUE(Eventually(
      [&] {
        auto p = alive->Admit(t);
        if (p.ok()) taken = *std::move(p);
        return taken != nullptr;
      },
      Scaled(absl::Seconds(5))));
  const absl::Duration lapsed_after = absl::Now() - died;
  EXPECT_GE(lapsed_after, 3 * heartbeat_ - absl::Milliseconds(20));
  EXPECT_LE(lapsed_after, 3 * heartbeat_ + Scaled(absl::Milliseconds(500)));
  // `mine` is older than the dead one and still counts: the heartbeat renewed it.
  EXPECT_EQ(Streams("team"), 2);
  EXPECT_FALSE(alive->Admit(t).ok());
}

TEST_F(ClusterQuotaTest, ARedisRestartGetsTheRunningStreamsBack) {
  ClusterQuotas* a = AddGateway();
  ClusterQuotas* b = AddGateway();
  const admission::Tenant t = Team(0, 1);
  auto running = a->Admit(t);
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(server_->Restart().ok());  // every key gone
  // The next heartbeat re-adds the stream, so B is refused again without a restart of anyone.
  ASSERT_TRUE(Eventually([&] { return Streams("team") == 1; }, Scaled(absl::Seconds(5))));
  auto st = b->Admit(t);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kResourceExhausted) << st.status();
  running->reset();
  EXPECT_TRUE(Eventually([&] { return b->Admit(t).ok(); }, Scaled(absl::Seconds(5))));
}

TEST_F(ClusterQuotaTest, RedisDownFailsOpenThenIsExactAgain) {
  ClusterQuotas* open = AddGateway(OnRedisError::kOpen);
  const admission::Tenant t = Team(0, 1);
  server_->Stop();
  auto p = open->Admit(t);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_GE(open->stats().redis_errors, 1);
  EXPECT_EQ(open->stats().admitted_without_redis, 1);
  ASSERT_TRUE(server_->Restart().ok());
  // Redis is back: the stream admitted without it is added by a heartbeat, and the limit holds.
  ASSERT_TRUE(Eventually([&] { return Streams("team") == 1; }, Scaled(absl::Seconds(5))));
  auto over = open->Admit(t);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  p->reset();
  EXPECT_TRUE(Eventually([&] { return open->Admit(t).ok(); }, Scaled(absl::Seconds(5))));
}

// What deploy/CONFIG.md (cluster.on_redis_error) promises for `open` while Redis is down: each
// gateway enforces every limit on its own, so N gateways admit up to N x the limit (here 2
// gateways, concurrent_streams 2 -> 4 streams; requests_per_minute 3 -> 6 requests), never more.
TEST_F(ClusterQuotaTest, RedisDownOpenEnforcesEachLimitPerGateway) {
  ClusterQuotas* a = AddGateway(OnRedisError::kOpen);
  ClusterQuotas* b = AddGateway(OnRedisError::kOpen);
  server_->Stop();
  const admission::Tenant streams = Team(0, 2);
  std::vector<std::unique_ptr<QuotaPermit>> held;
  for (ClusterQuotas* g : {a, b}) {
    for (int i = 0; i < 2; ++i) {
      auto p = g->Admit(streams);
      ASSERT_TRUE(p.ok()) << p.status();
      held.push_back(*std::move(p));
    }
    absl::Duration retry;
    auto over = g->Admit(streams, &retry);
    ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
    EXPECT_NE(over.status().message().find("limit of 2 concurrent requests reached"),
              std::string::npos) << over.status();
    EXPECT_NE(over.status().message().find("this lmgate alone"), std::string::npos)
        << over.status();
    EXPECT_GT(retry, absl::ZeroDuration());
    EXPECT_TRUE(admission::RetryAfterMs(over.status()).has_value());
  }
  held.pop_back();  // a stream ends: its gateway admits one more
  EXPECT_TRUE(b->Admit(streams).ok());
  EXPECT_EQ(a->Admit(streams).status().code(), absl::StatusCode::kResourceExhausted);
  held.clear();

  admission::Tenant rpm = Team(3, 0);
  rpm.name = "rpm-team";
  for (ClusterQuotas* g : {a, b}) {
    int admitted = 0;
    for (int i = 0; i < 5; ++i) admitted += g->Admit(rpm).ok() ? 1 : 0;
    EXPECT_EQ(admitted, 3);
  }
  EXPECT_EQ(a->stats().refused_without_redis + b->stats().refused_without_redis, 0)
      << "open mode refuses only for a limit, never for Redis";
}

TEST_F(ClusterQuotaTest, RedisDownFailsClosedWithAClearStatus) {
  ClusterQuotas* closed = AddGateway(OnRedisError::kClosed);
  const admission::Tenant t = Team(5, 0);
  server_->Pause();  // hangs: every call is bounded by the command timeout
  const absl::Time start = absl::Now();
  auto p = closed->Admit(t);
  EXPECT_LE(absl::Now() - start, Scaled(absl::Milliseconds(200)) + Scaled(absl::Seconds(1)));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_NE(p.status().message().find("cluster.on_redis_error=closed"), std::string::npos)
      << p.status();
  EXPECT_NE(p.status().message().find("tenant team"), std::string::npos) << p.status();
  // Right after a failure Redis is not tried again: no second timeout.
  const absl::Time second = absl::Now();
  EXPECT_FALSE(closed->Admit(t).ok());
  EXPECT_LT(absl::Now() - second, Scaled(absl::Milliseconds(100)));
  EXPECT_GE(closed->stats().refused_without_redis, 2);
  // A tenant without limits never needs Redis.
  admission::Tenant free;
  free.name = "free";
  EXPECT_TRUE(closed->Admit(free).ok());
  server_->Resume();
  EXPECT_TRUE(Eventually([&] { return closed->Admit(t).ok(); }, Scaled(absl::Seconds(5))));
  // Exact again (another tenant: the command that timed out may still have run once Redis woke).
  admission::Tenant fresh = Team(5, 0);
  fresh.name = "fresh";
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += closed->Admit(fresh).ok() ? 1 : 0;
  EXPECT_EQ(admitted, 5);
}

// The price of sharing: one Redis round trip (EVALSHA) per admit and one ZREM per release, printed
// for README "Running several lmgates" (the in-process tracker for comparison).
TEST_F(ClusterQuotaTest, AdmitAndReleaseCostOneRoundTripEach) {
  ClusterQuotas* shared = AddGateway();
  admission::QuotaTracker local;
  const admission::Tenant t = Team(1'000'000, 1000);
  auto measure = [&](admission::Quotas* q) {
    constexpr int kCalls = 500;
    const absl::Time start = absl::Now();
    for (int i = 0; i < kCalls; ++i) {
      auto p = q->Admit(t);
      EXPECT_TRUE(p.ok()) << p.status();
    }
    return (absl::Now() - start) / kCalls;
  };
  const absl::Duration shared_cost = measure(shared);
  const absl::Duration local_cost = measure(&local);
  std::printf("admit + release: shared (Redis on loopback) %s, in-process %s\n",
              absl::FormatDuration(shared_cost).c_str(), absl::FormatDuration(local_cost).c_str());
  EXPECT_LT(shared_cost, Scaled(absl::Milliseconds(5)));
  EXPECT_EQ(shared->stats().redis_errors, 0);
}

}  // namespace
}  // namespace lmgate::cluster
