// Giving memory back after a burst. glibc's malloc keeps freed memory in its arenas: after a
// burst of queued calls (or 10k streams that ended) lmgate's RSS would stay at the peak for the
// rest of the process's life (measured with the benchmark: 200 MB kept after an overload, 30 MB
// once trimmed). The server's housekeeping loop calls HeapReleaser::MaybeRelease every health
// interval.
#ifndef LMGATE_SERVICES_HEAP_H_
#define LMGATE_SERVICES_HEAP_H_

#include <cstddef>

namespace lmgate::services {

struct HeapUsage {
  size_t free_bytes = 0;  // held free in the arenas (pages given back by a trim still count)
  size_t used_bytes = 0;  // allocated (arena chunks in use + mmapped blocks)
};
// From glibc's mallinfo2(), which walks each arena's free lists under that arena's lock (the
// cost of the check, every health interval). Not meaningful when malloc is not glibc's (a
// sanitizer's allocator): glibc's arenas are then empty and nothing is trimmed.
HeapUsage ReadHeapUsage();
// Resident set size of this process, from /proc/self/statm; 0 if unreadable.
size_t ResidentBytes();

// Not thread-safe: one caller (the housekeeping loop).
class HeapReleaser {
 public:
  explicit HeapReleaser(size_t threshold_bytes) : threshold_(threshold_bytes) {}
  // Trims (malloc_trim) when more than the threshold is held free AND the resident memory not
  // accounted for by allocations (RSS − heap in use) grew by more than the threshold since the
  // last trim — so a heap that was already given back is not trimmed again every interval, and a
  // trim in the middle of a burst does not hide the memory the burst frees later. Returns
  // whether it trimmed. The trim, like the check, locks each arena while it works on it.
  bool MaybeRelease();

 private:
  const size_t threshold_;
  size_t slack_after_last_trim_ = 0;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_HEAP_H_
