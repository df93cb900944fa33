// ModelRegistry: the lease table (who holds which instance; last use).
#include "services/lifecycle/registry.h"

#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

Lease::~Lease() {
  if (registry_ != nullptr) registry_->ReleaseLease(instance_, id_);
}

std::unique_ptr<Lease> ModelRegistry::MakeLeaseLocked(ModelEntry& m, InstanceEntry& inst,
                                                      const Waiter& w, absl::Duration load_wait) {
  std::unique_ptr<Lease> lease(new Lease());
  lease->registry_ = this;
  lease->id_ = next_lease_id_++;
  lease->model_key_ = m.info.key;
  lease->instance_ = inst.info.identifier;
  lease->instance_reference_ = inst.info.instance_reference;
  lease->host_ = options_.host;
  lease->parallel_slots_ = inst.info.parallel_slots;
  lease->load_wait_ = load_wait;
  inst.leases[lease->id_] = Holder{w.request.holder, w.request.on_force_unload};
  return lease;
}

void ModelRegistry::ReleaseLease(const std::string& instance, uint64_t lease_id) {
  Locked lock(this);
  auto [m, inst] = FindInstanceLocked(instance);
  if (inst == nullptr) return;  // unloaded meanwhile
  inst->leases.erase(lease_id);
  inst->last_used = Now();
}

}  // namespace lmgate::lifecycle
