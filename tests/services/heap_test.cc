#include "services/heap.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace lmgate::services {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerMalloc = true;
#else
constexpr bool kSanitizerMalloc = false;
#endif

constexpr size_t kMiB = size_t{1} << 20;

// A burst: many small blocks (like queued calls), freed again except every 1000th, which pins
// the heap so that only a trim (not glibc's automatic top-of-heap release) gives pages back.
std::vector<std::unique_ptr<char[]>> Burst(size_t blocks, size_t block_bytes) {
  std::vector<std::unique_ptr<char[]>> all, kept;
  all.reserve(blocks);
  for (size_t i = 0; i < blocks; ++i) {
    all.emplace_back(new char[block_bytes]);
    for (size_t b = 0; b < block_bytes; b += 512) all.back()[b] = 1;  // make it resident
  }
  for (size_t i = 0; i < blocks; ++i) {
    if (i % 1000 == 999) kept.push_back(std::move(all[i]));
  }
  return kept;
}

TEST(Heap, ResidentBytesIsReadable) { EXPECT_GT(ResidentBytes(), 0u); }

TEST(Heap, NothingToReleaseBelowTheThreshold) {
  HeapReleaser heap(size_t{1} << 40);
  EXPECT_FALSE(heap.MaybeRelease());
}

TEST(Heap, MemoryFreedAfterABurstGoesBackToTheKernelOnce) {
  if (kSanitizerMalloc) GTEST_SKIP() << "the sanitizer's allocator is not glibc's malloc";
  HeapReleaser heap(32 * kMiB);
  auto kept = Burst(200000, 1000);
  ASSERT_GT(ReadHeapUsage().free_bytes, 100 * kMiB);
  const size_t before = ResidentBytes();
  EXPECT_TRUE(heap.MaybeRelease());
  const size_t after = ResidentBytes();
  EXPECT_LT(after + 100 * kMiB, before) << "RSS " << before << " -> " << after;
  // Still counted free (the pages went back, the chunks stay in the free lists), but the RSS
  // did not grow: nothing to walk again.
  EXPECT_GT(ReadHeapUsage().free_bytes, 32 * kMiB);
  EXPECT_FALSE(heap.MaybeRelease());
  // A second burst makes the RSS grow again: trimmed again.
  auto kept2 = Burst(200000, 1000);
  EXPECT_TRUE(heap.MaybeRelease());
}

TEST(Heap, ATrimDuringABurstDoesNotHideWhatTheBurstFreesLater) {
  if (kSanitizerMalloc) GTEST_SKIP() << "the sanitizer's allocator is not glibc's malloc";
  HeapReleaser heap(32 * kMiB);
  auto earlier = Burst(100000, 1000);  // something to trim while the next burst is running
  std::vector<std::unique_ptr<char[]>> running;
  for (size_t i = 0; i < 200000; ++i) {
    running.emplace_back(new char[1000]);
    for (size_t b = 0; b < 1000; b += 512) running.back()[b] = 1;
  }
  heap.MaybeRelease();  // mid-burst: whatever it does, the running burst's memory is in use
  const size_t in_burst = ResidentBytes();
  for (size_t i = 0; i < running.size(); ++i) {
    if (i % 1000 != 999) running[i].reset();
  }
  EXPECT_TRUE(heap.MaybeRelease());
  EXPECT_LT(ResidentBytes() + 100 * kMiB, in_burst);
}

}  // namespace
}  // namespace lmgate::services
