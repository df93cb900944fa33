// LocalLeaseTable: the contract a shared lease table keeps too (lease_table.h).
#include "services/lifecycle/lease_table.h"

#include <gtest/gtest.h>

namespace lmgate::lifecycle {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(LocalLeaseTableTest, ReserveBeforeUnloadRefusesWhileHeldAndBlocksNewLeases) {
  LocalLeaseTable t;
  const InstanceKey a{"http://host-a", "qwen"};
  const InstanceKey b{"http://host-b", "qwen"};  // same identifier, other host: another instance
  ASSERT_TRUE(t.Acquire(a, 1, {"req-1", nullptr}).ok());
  EXPECT_EQ(t.Count(a), 1);
  EXPECT_EQ(t.Count(b), 0);

  UnloadReservation r = t.ReserveUnload(a, UnloadReason::kRequested, false, {}, kT0);
  EXPECT_FALSE(r.granted);
  EXPECT_EQ(r.holders, std::vector<std::string>({"req-1"}));
  EXPECT_TRUE(t.ReserveUnload(b, UnloadReason::kRequested, false, {}, kT0).granted);

  bool cut = false;
  ASSERT_TRUE(t.Acquire(a, 2, {"req-2", [&] { cut = true; }}).ok());
  r = t.ReserveUnload(a, UnloadReason::kRequested, /*force=*/true, {}, kT0);
  ASSERT_TRUE(r.granted);
  EXPECT_EQ(r.holders.size(), 2u);
  ASSERT_EQ(r.force_hooks.size(), 1u);
  r.force_hooks[0]();
  EXPECT_TRUE(cut);
  // Reserved: no new lease, no second reservation.
  EXPECT_EQ(t.Acquire(a, 3, {"req-3", nullptr}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(t.ReserveUnload(a, UnloadReason::kEvicted, true, {}, kT0).granted);
  // The unload failed: leases stay, the instance can be leased again.
  t.FinishUnload(a, /*unloaded=*/false);
  EXPECT_TRUE(t.Acquire(a, 3, {"req-3", nullptr}).ok());
  EXPECT_EQ(t.Count(a), 3);
  // Unloaded: everything about it is forgotten; a late release is a no-op.
  ASSERT_TRUE(t.ReserveUnload(a, UnloadReason::kRequested, true, {}, kT0).granted);
  t.FinishUnload(a, /*unloaded=*/true);
  t.Release(a, 1, kT0);
  EXPECT_EQ(t.Count(a), 0);
  EXPECT_FALSE(t.LastUse(a).has_value());
}

TEST(LocalLeaseTableTest, ExpiryCountsFromTheLastRelease) {
  LocalLeaseTable t;
  const InstanceKey a{"h", "m"};
  ASSERT_TRUE(t.Acquire(a, 1, {"r", nullptr}).ok());
  t.Release(a, 1, kT0);
  EXPECT_EQ(t.LastUse(a), kT0);
  UnloadReservation r =
      t.ReserveUnload(a, UnloadReason::kExpired, false, absl::Minutes(10), kT0 + absl::Minutes(9));
  EXPECT_FALSE(r.granted);
  EXPECT_EQ(r.last_use, kT0);
  // An eviction does not look at the TTL.
  EXPECT_TRUE(t.ReserveUnload(a, UnloadReason::kEvicted, false, {}, kT0).granted);
  t.FinishUnload(a, false);
  EXPECT_TRUE(
      t.ReserveUnload(a, UnloadReason::kExpired, false, absl::Minutes(10), kT0 + absl::Minutes(10))
          .granted);
}

}  // namespace
}  // namespace lmgate::lifecycle
