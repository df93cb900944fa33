// Leases on LM Studio instances shared by every lmgate in front of one host, kept in Redis
// (issue 14). What makes N gateways behave as one on residency:
// - a request's lease is recorded where every gateway sees it (holder = "<gateway>/<lease>"),
//   renewed by its gateway and lapsing after lease_ttl when that gateway dies;
// - an unload, a TTL expiry or an eviction first RESERVES the instance: one atomic step that
//   checks the live leases of every gateway (and, for an expiry, the last use by any gateway) and
//   marks the instance "unloading", so no new lease is granted while the unload runs and no two
//   gateways unload or evict it at once. Without force the reservation is refused while anyone
//   holds a lease, naming the holders; with force it is granted and names them (their gateways
//   end those streams UNAVAILABLE "force-unloaded").
// - the last use of an instance (a lease released, anywhere) is shared, so the idle TTL counts
//   from the last request through any gateway.
//
// Keys (under lmgate:{<ns>}:, <ns> = the host; <instance> = the instance identifier on it):
// leases:<instance> (sorted set of holders scored by expiry), unloading:<instance> (the
// reserving gateway, expiring after reserve_ttl so a gateway that dies mid-unload does not block
// the instance forever), used:<instance> (last use, ms). All expire; nothing grows unbounded.
//
// Time comes from Redis (TIME) unless a test passes `now`. Thread-safe.
#ifndef LMGATE_SERVICES_CLUSTER_SHARED_LEASES_H_
#define LMGATE_SERVICES_CLUSTER_SHARED_LEASES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/cluster/redis.h"

namespace lmgate::cluster {

struct SharedLeasesOptions {
  absl::Duration lease_ttl = absl::Seconds(30);    // a lease not renewed this long lapses
  absl::Duration reserve_ttl = absl::Seconds(60);  // bound of an unload's reservation
  absl::Duration used_ttl = absl::Hours(24);       // how long a last-use time is kept
};

enum class UnloadReason { kRequested, kExpired, kEvicted };

struct Reservation {
  bool granted = false;
  // Live holders ("<gateway>/<lease>") when refused, or those a forced unload cuts.
  std::vector<std::string> holders;
  // Set when refused because another gateway is already unloading the instance.
  std::string reserved_by;
  // Set when an expiry was refused because the instance was used within its TTL.
  std::optional<absl::Time> last_use;
};

class SharedLeases {
 public:
  // `gateway` identifies this lmgate (unique among those sharing the host); `client` outlives this.
  SharedLeases(RedisClient* client, std::string ns, std::string gateway,
               SharedLeasesOptions options = {});

  // Records lease `lease` on `instance`. FAILED_PRECONDITION while the instance is reserved for
  // an unload (the caller waits for a new instance or loads again); UNAVAILABLE on Redis errors.
  absl::Status Acquire(const std::string& instance, const std::string& lease,
                       std::optional<absl::Time> now = std::nullopt);
  // Extends this gateway's given leases on `instance`; returns how many still existed.
  absl::StatusOr<int64_t> Renew(const std::string& instance, const std::vector<std::string>& leases,
                                std::optional<absl::Time> now = std::nullopt);
  // Drops the lease and records the use (the idle TTL counts from here, for every gateway).
  absl::Status Release(const std::string& instance, const std::string& lease,
                       std::optional<absl::Time> now = std::nullopt);
  // Live holders of `instance`, of every gateway.
  absl::StatusOr<std::vector<std::string>> Holders(const std::string& instance,
                                                   std::optional<absl::Time> now = std::nullopt);

  // The atomic step before unloading `instance` (see the header comment). For kExpired, `idle_ttl`
  // is the model's TTL: refused while the last use through any gateway is younger.
  absl::StatusOr<Reservation> ReserveUnload(const std::string& instance, UnloadReason reason,
                                            bool force, absl::Duration idle_ttl = absl::ZeroDuration(),
                                            std::optional<absl::Time> now = std::nullopt);
  // Ends this gateway's reservation (after the unload, or when it failed); the leases and last
  // use of the instance are dropped when `unloaded`.
  absl::Status FinishUnload(const std::string& instance, bool unloaded);

  const std::string& gateway() const { return gateway_; }

 private:
  std::string Key(const char* kind, const std::string& instance) const;

  RedisClient* const client_;
  const std::string ns_;
  const std::string gateway_;
  const SharedLeasesOptions options_;
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_SHARED_LEASES_H_
