#include "services/admission/quota.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/admission/retry_after.h"

namespace lmgate::admission {

// QuotaTracker's permit: a stream of its tenant until destroyed.
class LocalQuotaPermit : public QuotaPermit {
 public:
  LocalQuotaPermit(QuotaTracker* tracker, std::string tenant, int64_t tpm)
      : tracker_(tracker), tenant_(std::move(tenant)), tpm_(tpm) {}
  ~LocalQuotaPermit() override { tracker_->Release(tenant_); }
  void Charge(int64_t tokens) override {
    if (tpm_ > 0 && tokens > 0) tracker_->ChargeTokens(tenant_, tpm_, tokens);
  }

 private:
  QuotaTracker* const tracker_;
  const std::string tenant_;
  const int64_t tpm_;
};

void QuotaTracker::Refill(Bucket& b, double capacity, absl::Time now) {
  if (!b.init) {
    b.level = capacity;
    b.updated = now;
    b.init = true;
    return;
  }
  const double per_second = capacity / 60.0;
  b.level = std::min(capacity, b.level + absl::ToDoubleSeconds(now - b.updated) * per_second);
  b.updated = now;
}

absl::StatusOr<std::unique_ptr<QuotaPermit>> QuotaTracker::Admit(const Tenant& t,
                                                                 absl::Duration* retry_after) {
  const Limits& l = t.limits;
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  State& s = state_[t.name];
  auto refuse = [&](const std::string& what, absl::Duration wait) {
    if (retry_after != nullptr) *retry_after = wait;
    return WithRetryAfter(absl::ResourceExhaustedError(absl::StrFormat(
                              "tenant %s: %s; retry in %.1fs", t.name, what,
                              absl::ToDoubleSeconds(wait))),
                          wait);
  };
  if (l.concurrent_streams > 0 && s.streams >= l.concurrent_streams) {
    return refuse(absl::StrCat("limit of ", l.concurrent_streams, " concurrent requests reached"),
                  absl::Seconds(1));
  }
  if (l.tokens_per_minute > 0) {
    Refill(s.tokens, static_cast<double>(l.tokens_per_minute), now);
    if (s.tokens.level <= 0) {
      const double per_second = l.tokens_per_minute / 60.0;
      return refuse(absl::StrCat("limit of ", l.tokens_per_minute, " tokens/minute reached"),
                    absl::Seconds((1 - s.tokens.level) / per_second));
    }
  }
  if (l.requests_per_minute > 0) {
    Refill(s.requests, l.requests_per_minute, now);
    if (s.requests.level < 1) {
      const double per_second = l.requests_per_minute / 60.0;
      return refuse(absl::StrCat("limit of ", l.requests_per_minute, " requests/minute reached"),
                    absl::Seconds((1 - s.requests.level) / per_second));
    }
    s.requests.level -= 1;
  }
  ++s.streams;
  return std::unique_ptr<QuotaPermit>(
      std::make_unique<LocalQuotaPermit>(this, t.name, l.tokens_per_minute));
}

void QuotaTracker::Release(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  --state_[tenant].streams;
}

void QuotaTracker::ChargeTokens(const std::string& tenant, int64_t tpm, int64_t tokens) {
  absl::MutexLock lock(&mu_);
  Bucket& b = state_[tenant].tokens;
  Refill(b, static_cast<double>(tpm), clock_->Now());
  b.level -= static_cast<double>(tokens);
}

}  // namespace lmgate::admission
