// Latency samples and their percentiles, and the markdown helpers of the report.
//
// Thread-safe: Add() from any thread; the readers take a consistent copy.
#ifndef LMGATE_TESTS_BENCH_STATS_H_
#define LMGATE_TESTS_BENCH_STATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::bench {

class Samples {
 public:
  void Add(absl::Duration d);
  void Merge(const Samples& other);
  size_t count() const;
  // Nearest-rank percentile (p in 0..100) in microseconds; nullopt without samples.
  std::optional<double> PercentileUs(double p) const;

 private:
  mutable absl::Mutex mu_;
  mutable std::vector<int64_t> ns_ ABSL_GUARDED_BY(mu_);
  mutable bool sorted_ ABSL_GUARDED_BY(mu_) = true;
};

// "123", "1,234", "12.3 ms"-free: plain numbers in µs for tables; "—" for nullopt.
std::string Us(std::optional<double> us);
// a - b in µs ("—" when either is missing).
std::string DiffUs(std::optional<double> a, std::optional<double> b);
std::string Num(double v, int decimals = 0);

}  // namespace lmgate::bench

#endif  // LMGATE_TESTS_BENCH_STATS_H_
