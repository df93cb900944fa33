// LeaseTable: who holds a lease on which instance, the instance's last use, and the reservation
// an unload takes first. The one place the registry keeps lease state, behind an interface so
// that a table shared by several lmgates in front of one host (services/cluster/shared_leases.*)
// can replace the in-process one without touching the request path.
//
// Contract (what every implementation keeps):
// - An instance is named by its host and its identifier there (InstanceKey): nothing assumes a
//   single host.
// - Reserve before unload: an unload, an expiry and an eviction first call ReserveUnload, one
//   atomic step that checks the live holders (and, for an expiry, the last use against the idle
//   TTL) and marks the instance reserved; Acquire is refused while it is, so no lease is granted
//   while the unload runs. FinishUnload ends the reservation (and, when unloaded, forgets the
//   instance's leases and last use).
// - The last use is the last Release (anywhere, for a shared table): idle TTLs count from it.
//
// LocalLeaseTable is not synchronised: the registry calls it with its own lock held.
#ifndef LMGATE_SERVICES_LIFECYCLE_LEASE_TABLE_H_
#define LMGATE_SERVICES_LIFECYCLE_LEASE_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lmgate::lifecycle {

struct InstanceKey {
  std::string host;        // the LM Studio host (RegistryOptions::host)
  std::string identifier;  // the instance identifier on that host
  bool operator<(const InstanceKey& o) const {
    return std::tie(host, identifier) < std::tie(o.host, o.identifier);
  }
};

struct LeaseHolder {
  std::string holder;                    // request id, named to whoever tries to unload
  std::function<void()> on_force_unload;  // runs if a forced unload cuts the lease
};

enum class UnloadReason { kRequested, kExpired, kEvicted };

struct UnloadReservation {
  bool granted = false;
  // Live holders: why it was refused, or whom a forced unload cuts.
  std::vector<std::string> holders;
  // Granted with force: the holders' hooks, for the caller to run outside its lock.
  std::vector<std::function<void()>> force_hooks;
  // An expiry refused because the instance was used within its TTL: that use.
  std::optional<absl::Time> last_use;
  // Refused for another reason (a shared table that cannot confirm the holders, another
  // gateway's unload): the message to answer with.
  std::string why;
};

class LeaseTable {
 public:
  virtual ~LeaseTable() = default;
  // Records lease `id` on `inst`. FAILED_PRECONDITION while the instance is reserved for an
  // unload (the caller waits for another instance or loads one).
  virtual absl::Status Acquire(const InstanceKey& inst, uint64_t id, LeaseHolder holder) = 0;
  // Drops lease `id` and records the use at `now`. No-op for an instance forgotten meanwhile.
  virtual void Release(const InstanceKey& inst, uint64_t id, absl::Time now) = 0;
  virtual int Count(const InstanceKey& inst) const = 0;
  virtual std::vector<std::string> Holders(const InstanceKey& inst) const = 0;
  virtual std::optional<absl::Time> LastUse(const InstanceKey& inst) const = 0;
  // The atomic step before an unload (see above). Without `force` refused while anyone holds a
  // lease; for kExpired also refused while the last use is younger than `idle_ttl` at `now`.
  virtual UnloadReservation ReserveUnload(const InstanceKey& inst, UnloadReason reason,
                                          bool force, absl::Duration idle_ttl,
                                          absl::Time now) = 0;
  // Ends the reservation; `unloaded` also forgets the instance's leases and last use (an
  // instance that vanished from the host is forgotten this way too).
  virtual void FinishUnload(const InstanceKey& inst, bool unloaded) = 0;
};

// The in-process table. Thread-compatible: callers serialise (the registry's lock).
class LocalLeaseTable : public LeaseTable {
 public:
  absl::Status Acquire(const InstanceKey& inst, uint64_t id, LeaseHolder holder) override;
  void Release(const InstanceKey& inst, uint64_t id, absl::Time now) override;
  int Count(const InstanceKey& inst) const override;
  std::vector<std::string> Holders(const InstanceKey& inst) const override;
  std::optional<absl::Time> LastUse(const InstanceKey& inst) const override;
  UnloadReservation ReserveUnload(const InstanceKey& inst, UnloadReason reason, bool force,
                                  absl::Duration idle_ttl, absl::Time now) override;
  void FinishUnload(const InstanceKey& inst, bool unloaded) override;

 private:
  struct Entry {
    std::map<uint64_t, LeaseHolder> leases;
    std::optional<absl::Time> last_use;
    bool reserved = false;
  };
  const Entry* Find(const InstanceKey& inst) const;
  std::map<InstanceKey, Entry> entries_;
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_LEASE_TABLE_H_
