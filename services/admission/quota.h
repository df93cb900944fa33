// Per-tenant limits, enforced atomically under concurrency: requests per minute and tokens per
// minute (token buckets refilled continuously), and concurrent streams.
//
// Admit() checks every limit and takes a request and a stream in one critical section, so 100
// concurrent requests against a limit of 10/minute admit exactly 10. Tokens are charged after the
// fact (prompt + completion); a tenant whose token bucket is empty is refused until it refills.
// Thread-safe.
#ifndef LMGATE_SERVICES_ADMISSION_QUOTA_H_
#define LMGATE_SERVICES_ADMISSION_QUOTA_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/admission/clock.h"
#include "services/admission/identity.h"

namespace lmgate::admission {

class QuotaTracker;

// One admitted request's hold on a concurrent-stream slot of its tenant.
class QuotaPermit {
 public:
  ~QuotaPermit();
  QuotaPermit(const QuotaPermit&) = delete;
  QuotaPermit& operator=(const QuotaPermit&) = delete;
  // Records the tokens the request used (prompt + completion). Call at most once.
  void Charge(int64_t tokens);

 private:
  friend class QuotaTracker;
  QuotaPermit() = default;
  QuotaTracker* tracker_ = nullptr;
  std::string tenant_;
  int64_t tpm_ = 0;
};

class QuotaTracker {
 public:
  // `clock` (null = RealClock()) refills the buckets; it must outlive the tracker.
  explicit QuotaTracker(Clock* clock = nullptr) : clock_(clock != nullptr ? clock : RealClock()) {}

  // RESOURCE_EXHAUSTED naming the limit and when to retry (`*retry_after`, if not null).
  absl::StatusOr<std::unique_ptr<QuotaPermit>> Admit(const Tenant& tenant,
                                                     absl::Duration* retry_after = nullptr);

 private:
  friend class QuotaPermit;
  struct Bucket {
    double level = 0;
    absl::Time updated;
    bool init = false;
  };
  struct State {
    Bucket requests;
    Bucket tokens;
    int streams = 0;
  };
  static void Refill(Bucket& b, double capacity, absl::Time now);
  void Release(const std::string& tenant);
  void ChargeTokens(const std::string& tenant, int64_t tpm, int64_t tokens);

  Clock* const clock_;
  absl::Mutex mu_;
  std::map<std::string, State> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_QUOTA_H_
