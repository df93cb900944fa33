// ModelRegistry: capacity limits (loaded models / bytes) and LRU eviction of idle instances.
#include "services/lifecycle/registry.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

// Evicts (marks UNLOADING and returns in `evict`) or asks the flight to wait (UNAVAILABLE) until
// the flight fits the limits; OK when it fits.
absl::Status ModelRegistry::MakeRoomLocked(const std::shared_ptr<Flight>& f, int64_t bytes,
                                           std::vector<std::string>* evict) {
  int count = 0;
  int64_t used = 0;
  for (const auto& [k, m] : models_) {
    count += static_cast<int>(m->instances.size());
    used += m->info.size_bytes * static_cast<int64_t>(m->instances.size());
  }
  for (const auto& [k, other] : flights_) {
    if (other != f && other->admitted) {
      ++count;
      used += other->bytes;
    }
  }
  auto fits = [&] {
    return (options_.max_loaded_models <= 0 || count + 1 <= options_.max_loaded_models) &&
           (options_.max_loaded_bytes <= 0 || used + bytes <= options_.max_loaded_bytes);
  };
  if (fits()) return absl::OkStatus();
  // Idle, unpinned instances, least recently used first. A reservation can still be refused
  // (another lmgate of the host holds a lease on it, or an unload of it is under way): that one
  // is skipped and the next is tried, so an instance in use elsewhere never blocks an idle one.
  struct Candidate {
    absl::Time used;
    ModelEntry* model;
    InstanceEntry* inst;
  };
  std::vector<Candidate> candidates;
  for (auto& [k, m] : models_) {
    for (auto& inst : m->instances) {
      if (inst->state != State::kReady || inst->keep_loaded) continue;
      const InstanceKey key = KeyOf(*inst);
      if (leases_->Count(key) > 0) continue;
      candidates.push_back({leases_->LastUse(key).value_or(inst->added_at), m.get(), inst.get()});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.used < b.used; });
  std::vector<std::string> refused;
  for (const Candidate& c : candidates) {
    if (fits()) break;
    const UnloadReservation r = leases_->ReserveUnload(KeyOf(*c.inst), UnloadReason::kEvicted,
                                                       /*force=*/false, absl::ZeroDuration(), Now());
    if (!r.granted) {
      std::string detail = c.inst->info.identifier;
      if (!r.holders.empty()) {
        absl::StrAppend(&detail, " (held by ", absl::StrJoin(r.holders, ", "), ")");
      } else if (!r.why.empty()) {
        absl::StrAppend(&detail, " (", r.why, ")");
      }
      refused.push_back(std::move(detail));
      continue;
    }
    c.inst->state = State::kUnloading;
    evict->push_back(c.inst->info.identifier);
    --count;
    used -= c.model->info.size_bytes;
  }
  if (fits()) return absl::OkStatus();
  if (refused.empty()) {
    return absl::UnavailableError(
        "capacity limits reached and every loaded model is in use or pinned");
  }
  return absl::UnavailableError(absl::StrCat(
      "capacity limits reached: ", absl::StrJoin(refused, "; "),
      " could not be reserved for eviction, and every other loaded model is in use or pinned"));
}

}  // namespace lmgate::lifecycle
