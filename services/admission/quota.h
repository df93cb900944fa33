// Per-tenant limits, enforced atomically under concurrency: requests per minute and tokens per
// minute (token buckets refilled continuously), and concurrent streams.
//
// Quotas is the narrow interface the request path (services/gateway/grant.h) uses; QuotaTracker
// is the in-process implementation (one lmgate alone), cluster::ClusterQuotas the one shared by
// several lmgates in front of one host through Redis (services/cluster/cluster_quota.h).
//
// Admit() checks every limit and takes a request and a stream in one atomic step, so 100
// concurrent requests against a limit of 10/minute admit exactly 10. Tokens are charged after the
// fact (prompt + completion); a tenant whose token bucket is empty is refused until it refills.
// Thread-safe.
#ifndef LMGATE_SERVICES_ADMISSION_QUOTA_H_
#define LMGATE_SERVICES_ADMISSION_QUOTA_H_

#include <functional>
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

// One admitted request's hold on a concurrent-stream slot of its tenant; destroying it frees the
// slot (exactly once). It must not outlive the Quotas that issued it. Not thread-safe (one owner).
class QuotaPermit {
 public:
  virtual ~QuotaPermit() = default;
  // Records the tokens the request used (prompt + completion). Call at most once.
  virtual void Charge(int64_t tokens) = 0;
};

class Quotas {
 public:
  virtual ~Quotas() = default;
  // Checks every limit of `tenant` and, when all allow, takes a request and a stream slot.
  // RESOURCE_EXHAUSTED naming the limit and when to retry (`*retry_after`, if not null); a
  // shared implementation may also answer UNAVAILABLE when its store cannot be reached.
  virtual absl::StatusOr<std::unique_ptr<QuotaPermit>> Admit(
      const Tenant& tenant, absl::Duration* retry_after = nullptr) = 0;

  using AdmitDone = std::function<void(absl::StatusOr<std::unique_ptr<QuotaPermit>>)>;
  // Admit, with the answer handed to `done` exactly once: inline when it needs no wait (the
  // default, for an Admit that never blocks), otherwise from a thread of the implementation (a
  // shared store's round trip), so a gRPC reaction calling this never blocks on the store.
  // `tenant` must outlive the call of `done`.
  virtual void AdmitAsync(const Tenant& tenant, AdmitDone done) { done(Admit(tenant)); }
};

// The in-process Quotas. Never blocks beyond its own mutex.
class QuotaTracker : public Quotas {
 public:
  // `clock` (null = RealClock()) refills the buckets; it must outlive the tracker.
  explicit QuotaTracker(Clock* clock = nullptr) : clock_(clock != nullptr ? clock : RealClock()) {}

  absl::StatusOr<std::unique_ptr<QuotaPermit>> Admit(
      const Tenant& tenant, absl::Duration* retry_after = nullptr) override;

 private:
  friend class LocalQuotaPermit;
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
