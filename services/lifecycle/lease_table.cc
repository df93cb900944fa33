#include "services/lifecycle/lease_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::lifecycle {

const LocalLeaseTable::Entry* LocalLeaseTable::Find(const InstanceKey& inst) const {
  auto it = entries_.find(inst);
  return it == entries_.end() ? nullptr : &it->second;
}

absl::Status LocalLeaseTable::Acquire(const InstanceKey& inst, uint64_t id, LeaseHolder holder) {
  Entry& e = entries_[inst];
  if (e.reserved) {
    return absl::FailedPreconditionError(
        absl::StrCat("instance ", inst.identifier, " is being unloaded"));
  }
  e.leases[id] = std::move(holder);
  return absl::OkStatus();
}

void LocalLeaseTable::Release(const InstanceKey& inst, uint64_t id, absl::Time now) {
  auto it = entries_.find(inst);
  if (it == entries_.end()) return;
  it->second.leases.erase(id);
  it->second.last_use = now;
}

int LocalLeaseTable::Count(const InstanceKey& inst) const {
  const Entry* e = Find(inst);
  return e ? static_cast<int>(e->leases.size()) : 0;
}

std::vector<std::string> LocalLeaseTable::Holders(const InstanceKey& inst) const {
  std::vector<std::string> out;
  if (const Entry* e = Find(inst)) {
    for (const auto& [id, h] : e->leases) out.push_back(h.holder);
  }
  return out;
}

std::optional<absl::Time> LocalLeaseTable::LastUse(const InstanceKey& inst) const {
  const Entry* e = Find(inst);
  return e ? e->last_use : std::nullopt;
}

UnloadReservation LocalLeaseTable::ReserveUnload(const InstanceKey& inst, UnloadReason reason,
                                                 bool force, absl::Duration idle_ttl,
                                                 absl::Time now) {
  UnloadReservation r;
  Entry& e = entries_[inst];
  if (e.reserved) return r;  // another unload of it runs
  for (const auto& [id, h] : e.leases) {
    r.holders.push_back(h.holder);
    if (force && h.on_force_unload) r.force_hooks.push_back(h.on_force_unload);
  }
  if (!r.holders.empty() && !force) return r;
  if (reason == UnloadReason::kExpired && e.last_use && now - *e.last_use < idle_ttl) {
    r.last_use = e.last_use;
    return r;
  }
  e.reserved = true;
  r.granted = true;
  return r;
}

void LocalLeaseTable::FinishUnload(const InstanceKey& inst, bool unloaded) {
  auto it = entries_.find(inst);
  if (it == entries_.end()) return;
  if (unloaded) {
    entries_.erase(it);
  } else {
    it->second.reserved = false;
  }
}

}  // namespace lmgate::lifecycle
