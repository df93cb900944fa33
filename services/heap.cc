#include "services/heap.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

namespace lmgate::services {

HeapUsage ReadHeapUsage() {
  HeapUsage u;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  u.free_bytes = m.fordblks;
  u.used_bytes = m.uordblks + m.hblkhd;
#endif
  return u;
}

size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &pages, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

namespace {

// Resident memory not accounted for by heap allocations: code, stacks, and freed heap pages.
size_t Slack(const HeapUsage& u) {
  const size_t rss = ResidentBytes();
  return rss > u.used_bytes ? rss - u.used_bytes : 0;
}

}  // namespace

bool HeapReleaser::MaybeRelease() {
  const HeapUsage u = ReadHeapUsage();
  if (u.free_bytes <= threshold_) return false;
  if (Slack(u) <= slack_after_last_trim_ + threshold_) return false;
  malloc_trim(0);
  slack_after_last_trim_ = Slack(ReadHeapUsage());
  return true;
}

}  // namespace lmgate::services
