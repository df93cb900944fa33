// The admission::Quotas shared by every lmgate in front of one LM Studio host (issue 14): the
// tenant limits (requests/minute, tokens/minute, concurrent streams) are checked and taken in
// Redis by SharedQuota's atomic scripts, so N gateways admit exactly what one would.
//
// Permits: each admitted request with a concurrent_streams limit holds a permit
// ("<gateway id>:<n>") in Redis. A heartbeat thread renews this gateway's live permits every
// `heartbeat`; a permit not renewed for 3× that lapses, so a killed gateway's streams stop
// counting within that bound. The heartbeat also re-adds live permits Redis lost (a restart
// flushed it, or they lapsed while this gateway could not reach it), so the count is right again
// once Redis answers. Destroying a permit releases it (one ZREM; on failure it lapses).
//
// Redis errors (down, unreachable, timed out): Admit follows `on_redis_error` — kOpen admits
// within this gateway's own limits (an in-process QuotaTracker over the calls admitted without
// Redis: N gateways admit up to N × each limit; beyond it RESOURCE_EXHAUSTED saying so), the
// stream tracked locally and re-added at the first heartbeat that reaches Redis; kClosed answers
// UNAVAILABLE naming Redis. For `retry_interval` after an error Admit does not
// try Redis at all (so a hung Redis costs one command timeout per interval, not one per request);
// errors are logged at most every 10 s, the recovery once, and counted (Stats()).
//
// Thread-safe. Admit blocks for one Redis round trip (bounded by the client's command timeout);
// a permit's destructor for one ZREM. AdmitAsync never blocks: a check that needs Redis runs on a
// small pool of this object's own, which calls `done` there; one that does not (a tenant without
// limits, or within retry_interval of a Redis error) calls `done` inline.
#ifndef LMGATE_SERVICES_CLUSTER_CLUSTER_QUOTA_H_
#define LMGATE_SERVICES_CLUSTER_CLUSTER_QUOTA_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/admission/quota.h"
#include "services/cluster/options.h"
#include "services/cluster/redis.h"
#include "services/cluster/shared_quota.h"
#include "services/worker_pool.h"

namespace lmgate::cluster {

// A gateway id unique per process: host name, pid and start time.
std::string NewGatewayId();

struct ClusterQuotaOptions {
  // Names the LM Studio host (its URL): gateways of different hosts never share a quota.
  std::string ns;
  // Unique per process (permit ids start with it); "" = host name, pid and start time.
  std::string gateway_id;
  OnRedisError on_redis_error = OnRedisError::kOpen;
  // Renewal period; permits lapse after 3× this.
  absl::Duration heartbeat = absl::Seconds(5);
  // After a Redis error, Admit skips Redis this long (and applies on_redis_error directly).
  absl::Duration retry_interval = absl::Seconds(1);
  // Threads running AdmitAsync's Redis round trips (the client serialises commands anyway).
  int admit_threads = 2;
};

class ClusterQuotas : public admission::Quotas {
 public:
  struct Stats {
    int64_t redis_errors = 0;            // failed Redis calls (admit, renew, release, charge)
    int64_t admitted_without_redis = 0;  // on_redis_error = open
    int64_t refused_without_redis = 0;   // on_redis_error = closed
  };

  // `client` must outlive this. Starts the heartbeat thread.
  ClusterQuotas(RedisClient* client, ClusterQuotaOptions options);
  // Stops the heartbeat, then finishes the pending AdmitAsync calls (their `done` runs). Every
  // permit must be destroyed first.
  ~ClusterQuotas() override;
  ClusterQuotas(const ClusterQuotas&) = delete;
  ClusterQuotas& operator=(const ClusterQuotas&) = delete;

  absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> Admit(
      const admission::Tenant& tenant, absl::Duration* retry_after = nullptr) override;
  void AdmitAsync(const admission::Tenant& tenant, AdmitDone done) override;

  Stats stats() const;
  const std::string& gateway_id() const { return options_.gateway_id; }
  // Runs one heartbeat now (tests; the thread runs them every `heartbeat`).
  void HeartbeatNow();

 private:
  friend class ClusterPermit;
  // What Admit does without Redis: on_redis_error, counted; `why` is the Redis error.
  absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> WithoutRedis(
      const admission::Tenant& tenant, const std::string& why, absl::Duration* retry_after);
  // `local`: the hold on local_ of a call admitted without Redis (null otherwise).
  std::unique_ptr<admission::QuotaPermit> NewPermit(
      const admission::Tenant& tenant, std::string id,
      std::unique_ptr<admission::QuotaPermit> local = nullptr);
  void Release(const std::string& tenant, const std::string& id);
  void Charge(const std::string& tenant, const QuotaLimits& limits, int64_t tokens);
  // Records a failed Redis call (rate-limited log, retry_interval), or a success after failures.
  void NoteRedis(const absl::Status& st, const char* what);
  bool SkippingRedis() const;
  void Loop();

  RedisClient* const client_;
  ClusterQuotaOptions options_;
  SharedQuota shared_;
  // on_redis_error=open: the limits of the calls this gateway admits without Redis.
  admission::QuotaTracker local_;
  std::atomic<int64_t> next_id_{0};
  std::atomic<int64_t> redis_errors_{0};
  std::atomic<int64_t> admitted_without_redis_{0};
  std::atomic<int64_t> refused_without_redis_{0};

  mutable absl::Mutex health_mu_;
  bool failing_ ABSL_GUARDED_BY(health_mu_) = false;
  absl::Time skip_until_ ABSL_GUARDED_BY(health_mu_) = absl::InfinitePast();
  absl::Time last_log_ ABSL_GUARDED_BY(health_mu_) = absl::InfinitePast();

  // Held by a heartbeat for its Redis calls, and by a release while it forgets its permit: a
  // release's ZREM therefore always comes after any heartbeat that re-added that permit.
  absl::Mutex heartbeat_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  // Live permits with a concurrent_streams limit, by tenant.
  std::map<std::string, std::set<std::string>> live_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  std::thread thread_;
  // Last: destroyed (drained) first, while everything its work uses is still there.
  services::WorkerPool admit_pool_;
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_CLUSTER_QUOTA_H_
