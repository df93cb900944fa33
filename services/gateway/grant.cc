#include "services/gateway/grant.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace lmgate::gateway {

absl::Status ForTenant(const admission::Tenant* tenant, const absl::Status& st,
                       const std::string& name) {
  if (tenant == nullptr || tenant->models.empty() || !absl::IsNotFound(st)) return st;
  return absl::NotFoundError(
      absl::StrCat("model \"", name, "\" is not downloaded on the LM Studio host"));
}

std::string SlotKey(const lifecycle::Lease& lease) {
  return absl::StrCat(lease.host(), "|", lease.instance());
}

namespace {

// What a forced unload of the leased instance does: before the grant, take the request out of
// the queue (it then fails UNAVAILABLE); after it, the caller's hook. Owned by the lease's holder
// entry in the registry, so it lives exactly as long as the lease.
struct ForceHook {
  // Cancels the queued ticket: the caller's cancel (chained) or a forced unload.
  std::shared_ptr<backends::CancelToken> queue_cancel = std::make_shared<backends::CancelToken>();
  std::function<void()> after_grant;
  std::atomic<bool> granted{false};
  std::atomic<bool> forced{false};

  // `forced` is set before `granted` is read, and the admit callback sets `granted` before it
  // reads `forced`: a race between the two ends in a failed grant, never a request running on
  // an unloaded instance unnoticed.
  void Run() {
    forced = true;
    if (!granted.load()) {
      queue_cancel->Cancel();
    } else if (after_grant) {
      after_grant();
    }
  }
};

}  // namespace

// One request on its way to a grant, shared by the registry's and the scheduler's callbacks.
struct Granter::Pending {
  backends::CallContext ctx;
  GrantRequest request;
  GrantDone done;
  std::unique_ptr<admission::QuotaPermit> permit;
  std::unique_ptr<lifecycle::Lease> lease;  // moved into the Grant once the slot is granted
  std::shared_ptr<ForceHook> hook = std::make_shared<ForceHook>();
  backends::CancelRegistration chain;  // ctx.cancel → hook->queue_cancel while queued
  std::atomic<bool> chain_inline{false};
};

void Granter::Start(const backends::CallContext& ctx, GrantRequest request, GrantDone done) {
  auto p = std::make_shared<Pending>();
  p->ctx = ctx;
  p->done = std::move(done);
  p->permit = std::move(request.permit);
  p->request = std::move(request);
  if (p->permit != nullptr || p->request.tenant == nullptr) {
    Acquire(p);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      p->done(absl::UnavailableError("lmgate is shutting down"));
      return;
    }
    ++submitting_;  // Shutdown waits for the admit's continuation
  }
  // Inline with the in-process quotas; from the shared quotas' own thread when Redis is asked.
  quotas_->AdmitAsync(*p->request.tenant,
                      [this, p](absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> permit) {
                        OnPermit(p, std::move(permit));
                        absl::MutexLock lock(&mu_);
                        --submitting_;
                      });
}

void Granter::OnPermit(const std::shared_ptr<Pending>& p,
                       absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> permit) {
  if (!permit.ok()) {
    p->done(permit.status());
    return;
  }
  // Cancelled (or past its deadline) while the admit was in flight: the permit goes at once.
  if (absl::Status st = p->ctx.CheckAlive(); !st.ok()) {
    permit->reset();
    p->done(st);
    return;
  }
  p->permit = *std::move(permit);
  Acquire(p);
}

void Granter::Acquire(const std::shared_ptr<Pending>& p) {
  const backends::CallContext& ctx = p->ctx;
  lifecycle::AcquireRequest req;
  req.model = p->request.model;
  req.holder = ctx.request_id;
  req.tenant = p->request.tenant != nullptr ? p->request.tenant->name : "";
  req.ttl_hint = p->request.ttl_hint;
  req.on_load_progress = p->request.on_load_progress;
  p->hook->after_grant = p->request.on_force_unload;
  req.on_force_unload = [hook = p->hook] { hook->Run(); };
  registry_->Acquire(ctx, std::move(req),
                     [this, p](absl::StatusOr<std::unique_ptr<lifecycle::Lease>> lease) {
                       OnLease(p, std::move(lease));
                     });
}

void Granter::OnLease(const std::shared_ptr<Pending>& p,
                      absl::StatusOr<std::unique_ptr<lifecycle::Lease>> lease) {
  const admission::Tenant* tenant = p->request.tenant;
  // The name may have come to mean another model since the caller was authorized (a refresh).
  if (lease.ok() && tenant != nullptr) {
    if (auto st = tenant->CheckModel((*lease)->model_key(), p->request.model); !st.ok()) {
      lease = st;
    }
  }
  if (!lease.ok()) {
    p->done(ForTenant(tenant, lease.status(), p->request.model));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) ++submitting_;
    if (stopped_) lease = absl::UnavailableError("lmgate is shutting down");
  }
  if (!lease.ok()) {
    p->done(lease.status());
    return;
  }
  admission::Ticket ticket;
  ticket.key = SlotKey(**lease);
  ticket.concurrency = (*lease)->parallel_slots() > 0 ? (*lease)->parallel_slots() : default_slots_;
  ticket.tenant = tenant != nullptr ? tenant->name : "anonymous";
  ticket.weight = tenant != nullptr ? tenant->weight : 1;
  ticket.priority =
      tenant != nullptr ? std::min(p->request.priority, tenant->max_priority) : p->request.priority;
  ticket.deadline = p->ctx.deadline;
  ticket.cancel = p->hook->queue_cancel;
  const std::string instance = (*lease)->instance();
  p->lease = *std::move(lease);
  // The caller's cancel reaches the queued ticket through queue_cancel.
  std::weak_ptr<Pending> weak = p;
  p->chain.Register(p->ctx.cancel, [weak] {
    if (auto self = weak.lock()) {
      self->chain_inline = true;
      self->hook->queue_cancel->Cancel();
    }
  });
  std::function<void(int)> on_queued = p->request.on_queued;
  scheduler_->Submit(
      std::move(ticket),
      [p, instance](absl::StatusOr<std::unique_ptr<admission::Slot>> slot) {
        p->chain.Complete(/*from_callback=*/p->chain_inline.load());
        p->hook->granted = true;
        if (slot.ok() && p->hook->forced.load()) slot = absl::CancelledError("force-unloaded");
        if (!slot.ok()) {
          absl::Status st = slot.status();
          if (p->hook->forced.load()) {
            st = absl::UnavailableError(absl::StrCat(
                "instance ", instance,
                " was force-unloaded while the request waited for a slot; retry"));
          }
          p->lease.reset();
          p->permit.reset();
          p->done(st);
          return;
        }
        Grant g;
        g.permit = std::move(p->permit);
        g.lease = std::move(p->lease);
        g.slot = *std::move(slot);
        p->done(std::move(g));
      },
      std::move(on_queued));
  absl::MutexLock lock(&mu_);
  --submitting_;
}

void Granter::Shutdown() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return submitting_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

absl::StatusOr<Grant> Granter::Wait(const backends::CallContext& ctx, GrantRequest request) {
  absl::Notification done;
  absl::StatusOr<Grant> out = absl::UnknownError("not granted");
  Start(ctx, std::move(request), [&](absl::StatusOr<Grant> g) {
    out = std::move(g);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

}  // namespace lmgate::gateway
