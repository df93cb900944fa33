// ModelRegistry: capacity limits (loaded models / bytes) and LRU eviction of idle instances.
#include "services/lifecycle/registry.h"

#include <vector>

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
  while (!fits()) {
    ModelEntry* victim_model = nullptr;
    InstanceEntry* victim = nullptr;
    absl::Time victim_used;
    for (auto& [k, m] : models_) {
      for (auto& inst : m->instances) {
        if (inst->state != State::kReady || inst->keep_loaded) continue;
        const InstanceKey key = KeyOf(*inst);
        if (leases_->Count(key) > 0) continue;
        const absl::Time t = leases_->LastUse(key).value_or(inst->added_at);
        if (victim == nullptr || t < victim_used) {
          victim = inst.get();
          victim_model = m.get();
          victim_used = t;
        }
      }
    }
    if (victim == nullptr) {
      return absl::UnavailableError(
          "capacity limits reached and every loaded model is in use or pinned");
    }
    if (!leases_->ReserveUnload(KeyOf(*victim), UnloadReason::kEvicted, /*force=*/false,
                                absl::ZeroDuration(), Now())
             .granted) {
      return absl::UnavailableError(absl::StrCat(
          "capacity limits reached and ", victim->info.identifier, " is being unloaded"));
    }
    victim->state = State::kUnloading;
    evict->push_back(victim->info.identifier);
    --count;
    used -= victim_model->info.size_bytes;
  }
  return absl::OkStatus();
}

}  // namespace lmgate::lifecycle
