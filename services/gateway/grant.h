// The one path every inference request (Chat, Complete, Embed, Tokenize, CountTokens) takes
// before its driver runs, in this order:
//   1. the tenant's quota (admission::Quotas::Admit: requests/tokens per minute, concurrent
//      streams; in-process, or shared by every lmgate of the host through Redis);
//   2. a lease from lifecycle (ModelRegistry::Acquire: ensure-loaded; resolves a model key or an
//      instance identifier to one READY instance);
//   3. a slot of that instance's queue in the slot scheduler (admission::SlotScheduler: the
//      in-process FairScheduler, or cluster::ClusterSlots shared by every lmgate of the host
//      through Redis), keyed by host + identifier, with the instance's own parallel slots as its
//      concurrency.
// A Grant holds all three; destroying it frees the slot (admitting the next waiter of the
// instance), then the lease, then the quota permit. While a request waits for its slot it holds
// the lease: the instance is not expired or evicted under it, a plain unload is refused naming
// it, and a forced unload fails it with UNAVAILABLE (retryable) and removes it from the queue.
//
// Thread-safe. Granter::Start never blocks, so a gRPC reaction may call it: the in-process quota
// check runs inline (well under a microsecond), the shared one's Redis round trip on the shared
// quotas' own threads (admission::Quotas::AdmitAsync), and the request goes on from there. A
// request cancelled while its quota check is in flight drops the permit as soon as the check
// returns and fails CANCELLED. Granter::Wait blocks (worker threads only).
// Callbacks run on the calling thread, a quota, registry or scheduler thread, never under a lock.
#ifndef LMGATE_SERVICES_GATEWAY_GRANT_H_
#define LMGATE_SERVICES_GATEWAY_GRANT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "services/admission/identity.h"
#include "services/admission/quota.h"
#include "services/admission/slots.h"
#include "services/lifecycle/registry.h"

namespace lmgate::gateway {

// What a request holds while its driver runs. Members are destroyed slot first.
struct Grant {
  std::unique_ptr<admission::QuotaPermit> permit;  // null for the anonymous tenant
  std::unique_ptr<lifecycle::Lease> lease;
  std::unique_ptr<admission::Slot> slot;
};

struct GrantRequest {
  // The name as the caller sent it (defaults applied): a model key or an instance identifier.
  std::string model;
  const admission::Tenant* tenant = nullptr;  // null = anonymous, no limits
  admission::Priority priority = admission::Priority::kNormal;
  std::optional<absl::Duration> ttl_hint;
  // A permit this request already holds (a retry after the instance vanished): no second quota
  // charge.
  std::unique_ptr<admission::QuotaPermit> permit;
  // Progress while waiting (may be null; must not block).
  std::function<void(double)> on_load_progress;
  std::function<void(int)> on_queued;
  // Runs if the instance is force-unloaded after the grant, while the request runs.
  std::function<void()> on_force_unload;
};

using GrantDone = std::function<void(absl::StatusOr<Grant>)>;

// The registry's NOT_FOUND lists the host's models ("did you mean ..."); a tenant limited to some
// models hears only that the name is unknown.
absl::Status ForTenant(const admission::Tenant* tenant, const absl::Status& st,
                       const std::string& name);

// The scheduler key of an instance: its host and identifier.
std::string SlotKey(const lifecycle::Lease& lease);

class Granter {
 public:
  // `default_slots`: concurrency of an instance that reports no parallel slots. The pointers
  // must outlive every grant and every pending Start.
  Granter(lifecycle::ModelRegistry* registry, admission::SlotScheduler* scheduler,
          admission::Quotas* quotas, int default_slots)
      : registry_(registry), scheduler_(scheduler), quotas_(quotas), default_slots_(default_slots) {}

  // `done` runs exactly once, possibly inline: with a Grant, or the failing step's status
  // (RESOURCE_EXHAUSTED quota/queue, NOT_FOUND, PERMISSION_DENIED when the name resolved to a
  // model the tenant may not use, CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE).
  void Start(const backends::CallContext& ctx, GrantRequest request, GrantDone done);
  absl::StatusOr<Grant> Wait(const backends::CallContext& ctx, GrantRequest request);
  // From now on a Start that needs a quota check, and a lease arriving from the registry, fail
  // their request (UNAVAILABLE) instead of going on; returns once no quota check is in flight
  // and no thread is submitting to the scheduler. Call before destroying
  // the scheduler, whose destruction fails the queued requests; the registry's destruction then
  // fails the requests still waiting for a load.
  void Shutdown();

 private:
  struct Pending;
  void OnPermit(const std::shared_ptr<Pending>& p,
                absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> permit);
  void Acquire(const std::shared_ptr<Pending>& p);
  void OnLease(const std::shared_ptr<Pending>& p,
               absl::StatusOr<std::unique_ptr<lifecycle::Lease>> lease);

  lifecycle::ModelRegistry* const registry_;
  admission::SlotScheduler* const scheduler_;
  admission::Quotas* const quotas_;
  const int default_slots_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Quota checks in flight plus threads submitting to the scheduler.
  int submitting_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lmgate::gateway

#endif  // LMGATE_SERVICES_GATEWAY_GRANT_H_
