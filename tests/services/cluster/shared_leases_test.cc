// services/cluster/shared_leases: gateways A, B, C (three clients) on one real redis-server, time
// passed explicitly (no sleeps). The measured cases of issue 14 at this layer: B's no-force unload
// refused while A holds a lease; B's TTL expiry refused while A used the instance recently; a
// forced unload names A's holders; two gateways never unload at once; a dead gateway's leases lapse.
#include "services/cluster/shared_leases.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/redis_server.h"

namespace lmgate::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class SharedLeasesTest : public testing::Test {
 protected:
  void SetUp() override {
    auto s = testutil::RedisServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    auto url = ParseRedisUrl(server_->url());
    ASSERT_TRUE(url.ok());
    SharedLeasesOptions o;
    o.lease_ttl = absl::Seconds(30);
    o.reserve_ttl = absl::Seconds(60);
    for (const char* g : {"A", "B", "C"}) {
      clients_.push_back(std::make_unique<RedisClient>(*url));
      gw_.push_back(std::make_unique<SharedLeases>(clients_.back().get(), "host-1", g, o));
    }
  }
  SharedLeases& A() { return *gw_[0]; }
  SharedLeases& B() { return *gw_[1]; }
  SharedLeases& C() { return *gw_[2]; }

  std::unique_ptr<testutil::RedisServer> server_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::vector<std::unique_ptr<SharedLeases>> gw_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(SharedLeasesTest, NoForceUnloadIsRefusedWhileAnotherGatewayHoldsALease) {
  ASSERT_TRUE(A().Acquire("qwen", "1", t0_).ok());
  auto r = B().ReserveUnload("qwen", UnloadReason::kRequested, /*force=*/false,
                             absl::ZeroDuration(), t0_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->granted);
  EXPECT_THAT(r->holders, ElementsAre("A/1"));
  // A still gets new leases: nothing was reserved.
  EXPECT_TRUE(A().Acquire("qwen", "2", t0_).ok());
  ASSERT_TRUE(A().Release("qwen", "1", t0_).ok());
  ASSERT_TRUE(A().Release("qwen", "2", t0_).ok());
  r = B().ReserveUnload("qwen", UnloadReason::kRequested, false, absl::ZeroDuration(), t0_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->granted);
  EXPECT_THAT(r->holders, IsEmpty());
  // While B unloads, nobody gets a lease on it...
  absl::Status st = C().Acquire("qwen", "9", t0_);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("being unloaded by lmgate B"), std::string::npos) << st;
  // ...and no other gateway reserves it too.
  auto again = C().ReserveUnload("qwen", UnloadReason::kEvicted, true, absl::ZeroDuration(), t0_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->granted);
  EXPECT_EQ(again->reserved_by, "B");
  ASSERT_TRUE(B().FinishUnload("qwen", /*unloaded=*/true).ok());
  EXPECT_TRUE(C().Acquire("qwen", "9", t0_).ok()) << "a new instance of the same name is usable";
}

TEST_F(SharedLeasesTest, ForcedUnloadNamesTheHoldersItCuts) {
  ASSERT_TRUE(A().Acquire("qwen", "1", t0_).ok());
  ASSERT_TRUE(C().Acquire("qwen", "7", t0_).ok());
  auto r = B().ReserveUnload("qwen", UnloadReason::kRequested, /*force=*/true,
                             absl::ZeroDuration(), t0_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->granted);
  EXPECT_THAT(r->holders, ElementsAre("A/1", "C/7"));
}

TEST_F(SharedLeasesTest, IdleTtlCountsFromTheLastUseThroughAnyGateway) {
  const absl::Duration ttl = absl::Seconds(2);
  ASSERT_TRUE(A().Acquire("qwen", "1", t0_).ok());
  ASSERT_TRUE(A().Release("qwen", "1", t0_ + absl::Seconds(10)).ok());
  // B last saw a request at t0 itself, but A's was at t0+10 s: B's expiry at t0+11 s is refused.
  auto r = B().ReserveUnload("qwen", UnloadReason::kExpired, false, ttl, t0_ + absl::Seconds(11));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->granted);
  ASSERT_TRUE(r->last_use.has_value());
  EXPECT_EQ(*r->last_use, t0_ + absl::Seconds(10));
  // A later, out-of-order release (older time) does not move the last use back.
  ASSERT_TRUE(C().Acquire("qwen", "2", t0_).ok());
  ASSERT_TRUE(C().Release("qwen", "2", t0_ + absl::Seconds(1)).ok());
  r = B().ReserveUnload("qwen", UnloadReason::kExpired, false, ttl, t0_ + absl::Seconds(11));
  EXPECT_FALSE(r->granted);
  r = B().ReserveUnload("qwen", UnloadReason::kExpired, false, ttl, t0_ + absl::Seconds(12));
  EXPECT_TRUE(r->granted);
}

TEST_F(SharedLeasesTest, ADeadGatewaysLeasesLapse) {
  ASSERT_TRUE(A().Acquire("qwen", "1", t0_).ok());  // A dies: never renews
  ASSERT_TRUE(C().Acquire("qwen", "5", t0_).ok());
  EXPECT_EQ(*C().Renew("qwen", {"5"}, t0_ + absl::Seconds(20)), 1);
  EXPECT_THAT(*B().Holders("qwen", t0_ + absl::Seconds(29)), ElementsAre("A/1", "C/5"));
  EXPECT_THAT(*B().Holders("qwen", t0_ + absl::Seconds(31)), ElementsAre("C/5"));
  // A renew from the dead gateway's id after its lease lapsed does not revive it.
  EXPECT_EQ(*A().Renew("qwen", {"1"}, t0_ + absl::Seconds(32)), 0);
  EXPECT_EQ(*C().Renew("qwen", {"5"}, t0_ + absl::Seconds(45)), 1);
  auto r = B().ReserveUnload("qwen", UnloadReason::kRequested, false, absl::ZeroDuration(),
                             t0_ + absl::Seconds(46));
  EXPECT_THAT(r->holders, ElementsAre("C/5"));
}

TEST_F(SharedLeasesTest, ConcurrentReservationsGrantOne) {
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 20; ++i) {
        auto r = gw_[g]->ReserveUnload("gemma", UnloadReason::kEvicted, false,
                                       absl::ZeroDuration(), t0_);
        if (r.ok() && r->granted) ++granted;
      }
    });
  }
  for (auto& t : threads) t.join();
  // Only one gateway reserves (its own retries are re-grants of the same reservation).
  int owners = 0;
  for (auto& g : gw_) {
    auto r = g->ReserveUnload("gemma", UnloadReason::kEvicted, false, absl::ZeroDuration(), t0_);
    if (r.ok() && r->granted) ++owners;
  }
  EXPECT_EQ(owners, 1);
  EXPECT_GE(granted.load(), 1);
  EXPECT_LE(granted.load(), 20);
}

TEST_F(SharedLeasesTest, AReservationOfADeadGatewayExpires) {
  auto r = A().ReserveUnload("qwen", UnloadReason::kRequested, false);  // Redis's clock
  ASSERT_TRUE(r.ok() && r->granted);
  auto pttl = clients_[1]->Command({"PTTL", "lmgate:{host-1}:unloading:qwen"});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, 60'000);
  // FinishUnload of another gateway does not end A's reservation.
  ASSERT_TRUE(B().FinishUnload("qwen", false).ok());
  EXPECT_EQ(C().Acquire("qwen", "1").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(A().FinishUnload("qwen", false).ok());
  EXPECT_TRUE(C().Acquire("qwen", "1").ok());
}

TEST_F(SharedLeasesTest, RedisDownIsUnavailableNeverAGrant) {
  server_->Stop();
  auto r = B().ReserveUnload("qwen", UnloadReason::kExpired, false, absl::Seconds(1), t0_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(A().Acquire("qwen", "1", t0_).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lmgate::cluster
