// ModelRegistry: the lease table (who holds which instance; last use).
#include "services/lifecycle/registry.h"

#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

Lease::~Lease() {
  if (registry_ != nullptr) registry_->ReleaseLease(instance_, id_);
}

InstanceKey ModelRegistry::KeyOf(const InstanceEntry& inst) const {
  return KeyOf(inst.info.identifier);
}

std::unique_ptr<Lease> ModelRegistry::MakeLeaseLocked(ModelEntry& m, InstanceEntry& inst,
                                                      const Waiter& w, absl::Duration load_wait) {
  const uint64_t id = next_lease_id_++;
  if (!leases_->Acquire(KeyOf(inst), id, LeaseHolder{w.request.holder, w.request.on_force_unload})
           .ok()) {
    return nullptr;  // reserved for an unload: the caller waits for another instance
  }
  std::unique_ptr<Lease> lease(new Lease());
  lease->registry_ = this;
  lease->id_ = id;
  lease->model_key_ = m.info.key;
  lease->instance_ = inst.info.identifier;
  lease->instance_reference_ = inst.info.instance_reference;
  lease->host_ = options_.host;
  lease->parallel_slots_ = inst.info.parallel_slots;
  lease->load_wait_ = load_wait;
  return lease;
}

void ModelRegistry::ReleaseLease(const std::string& instance, uint64_t lease_id) {
  Locked lock(this);
  leases_->Release(KeyOf(instance), lease_id, Now());  // a no-op once the instance is gone
}

}  // namespace lmgate::lifecycle
