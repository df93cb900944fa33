// backends::Backoff, the one retry delay (HTTP retries, SDK reconnects, pin retries).
#include "backends/backoff.h"

#include <gtest/gtest.h>

namespace lmgate::backends {
namespace {

TEST(BackoffTest, DoublesUpToTheCapAndJittersDownward) {
  const BackoffPolicy p{absl::Milliseconds(100), absl::Seconds(1), 2.0, 0.5};
  EXPECT_EQ(Backoff(p, 0, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(Backoff(p, 1, 0.0), absl::Milliseconds(200));
  EXPECT_EQ(Backoff(p, 3, 0.0), absl::Milliseconds(800));
  EXPECT_EQ(Backoff(p, 4, 0.0), absl::Seconds(1));  // capped
  EXPECT_EQ(Backoff(p, 1, 1.0), absl::Milliseconds(100));  // jitter 0.5: [d/2, d]
  EXPECT_EQ(Backoff(p, -3, 0.0), absl::Milliseconds(100));
  // A huge retry count neither overflows nor exceeds the cap.
  EXPECT_EQ(Backoff(p, 1 << 30, 0.0), absl::Seconds(1));
}

TEST(BackoffTest, PinRetriesWithoutJitter) {
  const BackoffPolicy p{absl::Seconds(1), absl::Seconds(60), 2.0, 0.0};
  EXPECT_EQ(Backoff(p, 0, 0.7), absl::Seconds(1));
  EXPECT_EQ(Backoff(p, 5, 0.7), absl::Seconds(32));
  EXPECT_EQ(Backoff(p, 6, 0.7), absl::Seconds(60));
}

TEST(BackoffTest, UnitRandomIsInRange) {
  for (int i = 0; i < 1000; ++i) {
    const double u = UnitRandom();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace lmgate::backends
