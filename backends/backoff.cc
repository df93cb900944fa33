#include "backends/backoff.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace lmgate::backends {

absl::Duration Backoff(const BackoffPolicy& policy, int retry, double unit_random) {
  // Capped before multiplying out: a large `retry` must not overflow to infinity.
  const double factor = std::pow(std::max(1.0, policy.multiplier), std::clamp(retry, 0, 64));
  const absl::Duration full = std::min(policy.initial * factor, policy.max);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double u = std::clamp(unit_random, 0.0, 1.0);
  return full * (1.0 - jitter * u);
}

double UnitRandom() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace lmgate::backends
