#include "tests/bench/stats.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace lmgate::bench {

void Samples::Add(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  ns_.push_back(absl::ToInt64Nanoseconds(d));
  sorted_ = false;
}

void Samples::Merge(const Samples& other) {
  if (&other == this) return;
  std::vector<int64_t> copy;
  {
    absl::MutexLock lock(&other.mu_);
    copy = other.ns_;
  }
  absl::MutexLock lock(&mu_);
  ns_.insert(ns_.end(), copy.begin(), copy.end());
  sorted_ = false;
}

size_t Samples::count() const {
  absl::MutexLock lock(&mu_);
  return ns_.size();
}

std::optional<double> Samples::PercentileUs(double p) const {
  absl::MutexLock lock(&mu_);
  if (ns_.empty()) return std::nullopt;
  if (!sorted_) {
    std::sort(ns_.begin(), ns_.end());
    sorted_ = true;
  }
  const double rank = std::ceil(p / 100.0 * static_cast<double>(ns_.size()));
  const size_t i = std::min(ns_.size() - 1, static_cast<size_t>(std::max(1.0, rank)) - 1);
  return static_cast<double>(ns_[i]) / 1000.0;
}

std::string Num(double v, int decimals) { return absl::StrFormat("%.*f", decimals, v); }

std::string Us(std::optional<double> us) {
  if (!us) return "—";
  return *us >= 100 ? Num(*us, 0) : Num(*us, 1);
}

std::string DiffUs(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) return "—";
  const double d = *a - *b;
  return std::abs(d) >= 100 ? Num(d, 0) : Num(d, 1);
}

}  // namespace lmgate::bench
