// lifecycle::LeaseTable on SharedLeases (issue 14): with cluster.redis_url set, the registry's
// leases, last use and unload reservations are shared by every lmgate in front of one host.
//
// Each lease is kept twice: in a LocalLeaseTable (its holder's force-unload hook, the local
// count and last use the registry reads) and in Redis as "<gateway id>/<holder>#<lease id>", so
// another gateway's unload names it. Acquire never waits for Redis (the registry calls it under
// its lock on every request, so a hung Redis would stall every tenant): it grants locally and
// wakes the heartbeat thread, which adds the lease to Redis right away. That thread also renews
// this gateway's live leases every `heartbeat` (they lapse after 3x, so a killed gateway's leases
// stop blocking unloads) and re-adds the ones Redis lost or could not take while unreachable.
// A gateway that reserves the instance in the moment between the grant and the push does not see
// the lease: that request then ends UNAVAILABLE as cut by the unload (retryable).
//
// Forced unloads: when a forced reservation cuts other gateways' leases, a notice goes out on
// lmgate:{<ns>}:force-unload ("<instance>\n<gateway id>"); every other gateway runs its own
// holders' force-unload hooks for that instance (their streams end UNAVAILABLE
// "force-unloaded") from its subscriber thread.
//
// Redis errors (down, unreachable, timed out; every call bounded by the client's command
// timeout): leases are granted locally (inference on loaded models keeps working) and Release
// records the use locally, but ReserveUnload REFUSES - no unload, expiry or eviction without
// confirming that no other gateway holds a lease. For `retry_interval` after an error Redis is not
// tried at all (the registry calls this under its lock). Errors are logged at most every 10 s and
// counted (stats()).
//
// Thread-safe (its own mutex; Redis calls of the heartbeat run outside it). The registry calls
// it under its lock. Callbacks: none (force hooks are returned, never run here).
#ifndef LMGATE_SERVICES_CLUSTER_CLUSTER_LEASES_H_
#define LMGATE_SERVICES_CLUSTER_CLUSTER_LEASES_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/cluster/redis.h"
#include "services/cluster/shared_leases.h"
#include "services/lifecycle/lease_table.h"

namespace lmgate::cluster {

struct ClusterLeasesOptions {
  std::string ns;          // the LM Studio host (keys are namespaced by it)
  std::string gateway_id;  // unique per process (NewGatewayId())
  // Renewal period; a lease not renewed for 3x this lapses.
  absl::Duration heartbeat = absl::Seconds(5);
  // After a Redis error, Redis is skipped this long (Acquire local, ReserveUnload refused).
  absl::Duration retry_interval = absl::Seconds(1);
};

class ClusterLeases : public lifecycle::LeaseTable {
 public:
  struct Stats {
    int64_t redis_errors = 0;      // failed Redis calls (acquire, renew, release, reserve, finish)
    int64_t acquired_locally = 0;  // leases granted without Redis
    int64_t unloads_refused = 0;   // reservations refused because Redis could not confirm
  };

  // `client` must outlive this. Starts the heartbeat thread.
  ClusterLeases(RedisClient* client, ClusterLeasesOptions options);
  ~ClusterLeases() override;
  ClusterLeases(const ClusterLeases&) = delete;
  ClusterLeases& operator=(const ClusterLeases&) = delete;

  absl::Status Acquire(const lifecycle::InstanceKey& inst, uint64_t id,
                       lifecycle::LeaseHolder holder) override;
  void Release(const lifecycle::InstanceKey& inst, uint64_t id, absl::Time now) override;
  int Count(const lifecycle::InstanceKey& inst) const override;
  std::vector<std::string> Holders(const lifecycle::InstanceKey& inst) const override;
  std::optional<absl::Time> LastUse(const lifecycle::InstanceKey& inst) const override;
  lifecycle::UnloadReservation ReserveUnload(const lifecycle::InstanceKey& inst,
                                             lifecycle::UnloadReason reason, bool force,
                                             absl::Duration idle_ttl, absl::Time now) override;
  void FinishUnload(const lifecycle::InstanceKey& inst, bool unloaded) override;

  Stats stats() const;
  const std::string& gateway_id() const { return options_.gateway_id; }
  // Runs one heartbeat now (tests; the thread runs them every `heartbeat`).
  void HeartbeatNow();

 private:
  struct Live {
    std::string name;  // "<holder>#<id>" (SharedLeases prefixes the gateway id)
    bool in_redis = false;
    std::function<void()> on_force_unload;
  };
  // False while Redis is skipped after an error.
  bool RedisUsable() const;
  // Records a Redis call's outcome (rate-limited log, retry_interval); true when it failed.
  bool Failed(const absl::Status& st, const char* what) const;
  void Loop();
  // Adds to Redis the leases of `instance` that are not there (all of them with `all`: Redis
  // lost them); false when Redis failed. A lease released meanwhile is dropped again.
  bool PushLeases(const std::string& instance, const std::map<uint64_t, Live>& leases, bool all);
  // Pushes every lease granted since the last push (Acquire never waits for Redis).
  void PushPending();
  bool KickedOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kick_mu_) {
    return kicked_ || stopping_;
  }
  // Another gateway's force-unload notice: runs this gateway's hooks on that instance.
  void OnForceUnload(const std::string& payload);

  RedisClient* const client_;
  ClusterLeasesOptions options_;
  const std::string force_channel_;
  mutable SharedLeases shared_;

  mutable std::atomic<int64_t> redis_errors_{0};
  std::atomic<int64_t> acquired_locally_{0};
  std::atomic<int64_t> unloads_refused_{0};

  mutable absl::Mutex health_mu_;
  mutable bool failing_ ABSL_GUARDED_BY(health_mu_) = false;
  mutable absl::Time skip_until_ ABSL_GUARDED_BY(health_mu_) = absl::InfinitePast();
  mutable absl::Time last_log_ ABSL_GUARDED_BY(health_mu_) = absl::InfinitePast();

  mutable absl::Mutex mu_;
  lifecycle::LocalLeaseTable local_ ABSL_GUARDED_BY(mu_);
  // This gateway's live leases by instance identifier, then lease id.
  std::map<std::string, std::map<uint64_t, Live>> live_ ABSL_GUARDED_BY(mu_);
  // Leases granted since the last push (instance identifier, lease id).
  std::vector<std::pair<std::string, uint64_t>> pending_ ABSL_GUARDED_BY(mu_);

  // Wakes the heartbeat thread: a lease to push (kicked_) or the destructor (stopping_).
  absl::Mutex kick_mu_;
  bool kicked_ ABSL_GUARDED_BY(kick_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(kick_mu_) = false;
  std::thread thread_;
  std::unique_ptr<RedisSubscriber> subscriber_;  // last: stopped first
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_CLUSTER_LEASES_H_
