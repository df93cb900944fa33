// Private state of ModelRegistry, shared by its .cc files. Not part of the API.
#ifndef LMGATE_SERVICES_LIFECYCLE_REGISTRY_INTERNAL_H_
#define LMGATE_SERVICES_LIFECYCLE_REGISTRY_INTERNAL_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/lifecycle/registry.h"

namespace lmgate::lifecycle {

// Someone waiting for a flight: an Acquire (wants a lease) or an explicit Load.
struct ModelRegistry::Waiter {
  AcquireRequest request;
  AcquireDone acquire_done;
  std::function<void(absl::StatusOr<InstanceSnapshot>)> load_done;
  std::shared_ptr<backends::CancelToken> token;
  // Registered after the waiter joined its flight, which may complete it first.
  backends::CancelRegistration cancel;
  // Set by the cancel callback, so completing from inside it does not wait for itself.
  std::atomic<bool> cancelled_inline{false};
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time started;
  std::optional<absl::Duration> ttl_override;
  bool unique_flight = false;            // explicit new_instance / custom identifier
  std::weak_ptr<Flight> flight;          // guarded by the registry lock
  bool finished = false;                 // guarded by the registry lock
  DriverKind used = DriverKind::kAuto;   // set when the flight completes
};

// One upstream load shared by all its waiters.
struct ModelRegistry::Flight {
  std::string key;
  std::string model_key;
  backends::LoadParams params;
  DriverKind driver = DriverKind::kAuto;
  bool keep_loaded = false;
  bool explicit_load = false;
  bool counted_loading = false;  // ModelEntry::loading was incremented
  bool admitted = false;         // passed the capacity check
  int64_t bytes = 0;
  std::optional<absl::Duration> ttl;
  std::string requested_by;  // tenant of the waiter that started it ("" = lmgate or unknown)
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::shared_ptr<backends::CancelToken> cancel = std::make_shared<backends::CancelToken>();
  bool done = false;
  // Ties the flight to the same load in other gateways (flights.h). Set at creation; used under
  // the registry lock while !done, and by the flight's thread, which destroys it at the end.
  std::unique_ptr<FlightLink> link;
  bool followed = false;  // another gateway ran the load (its events are its own)
};

struct ModelRegistry::InstanceEntry {
  backends::InstanceInfo info;
  State state = State::kReady;
  // Leases and the last use are in the registry's LeaseTable (keyed by host and identifier).
  std::optional<absl::Duration> ttl;
  bool keep_loaded = false;
  bool external = false;  // loaded outside lmgate
  // The settings lmgate's load sent (request, then the model's policy); empty if external.
  backends::LoadParams sent;
  absl::Time added_at;
  // Idle time counts from here at the earliest (a TTL changed at run time counts from then).
  absl::Time ttl_from = absl::InfinitePast();
};

struct ModelRegistry::ModelEntry {
  backends::ModelInfo info;
  bool downloaded = false;
  std::vector<std::unique_ptr<InstanceEntry>> instances;
  std::string failure;  // last load failure; cleared by a successful load
  // The failure only said the host was unreachable (UNAVAILABLE, DEADLINE_EXCEEDED): a host
  // that answers a listing again clears it.
  bool failure_transient = false;
  int loading = 0;      // flights running for this model
  double progress = 0;
};

class ABSL_SCOPED_LOCKABLE ModelRegistry::Locked {
 public:
  explicit Locked(const ModelRegistry* r) ABSL_EXCLUSIVE_LOCK_FUNCTION(r->mu_) : r_(r) {
    r_->mu_.Lock();
  }
  ~Locked() ABSL_UNLOCK_FUNCTION() {
    r_->mu_.Unlock();
    r_->outbox_.Flush();
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  const ModelRegistry* const r_;
};

// Loads with the same model, settings and driver share one flight.
inline std::string FlightKey(const backends::LoadParams& p, DriverKind d) {
  auto o = [](const auto& v) { return v ? absl::StrCat(*v) : std::string("-"); };
  return absl::StrCat(p.model_key, "|", p.identifier, "|", o(p.context_length), "|",
                      o(p.gpu_offload_ratio), "|", o(p.cpu_threads), "|", o(p.rope_frequency_base),
                      "|", o(p.rope_frequency_scale), "|",
                      p.flash_attention ? (*p.flash_attention ? "fa1" : "fa0") : "-", "|",
                      o(p.parallel_slots), "|", o(p.eval_batch_size), "|",
                      static_cast<int>(d));
}

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_REGISTRY_INTERNAL_H_
