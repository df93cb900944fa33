// ModelRegistry: the waiter queue: routing an Acquire to a lease, a flight or a failure;
// misses waiting for a re-read; cancels and deadlines of waiters.
#include "services/lifecycle/registry.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

using backends::LoadParams;

void ModelRegistry::RouteLocked(const std::shared_ptr<Waiter>& waiter, bool may_defer,
                                std::unique_ptr<Lease>* lease, absl::Status* failed) {
  if (stopping_) {
    *failed = absl::UnavailableError("lmgate is shutting down");
    return;
  }
  const std::string& name = waiter->request.model;
  // A model key means "any ready instance" (the least busy); otherwise `name` may be the
  // identifier of one instance.
  ModelEntry* m = FindModelLocked(name);
  InstanceEntry* inst = nullptr;
  if (m != nullptr) {
    inst = PickReadyLocked(*m);
  } else {
    auto found = FindInstanceLocked(name);
    m = found.first;
    if (found.second != nullptr && found.second->state == State::kReady) {
      inst = found.second;
    } else if (m != nullptr) {
      inst = PickReadyLocked(*m);
    }
  }
  if (inst != nullptr) {
    *lease = MakeLeaseLocked(*m, *inst, *waiter,
                             may_defer ? absl::ZeroDuration() : Now() - waiter->started);
    if (*lease != nullptr) return;
    // The lease table refused it (reserved for an unload): wait for a load, as with none READY.
  }
  if (m == nullptr) {
    // Not on the host as of the last listing. A stale listing is re-read once for every miss
    // waiting meanwhile (maintenance thread); a fresh one answers now.
    if (may_defer && !ListingFreshLocked()) {
      unresolved_.push_back(waiter);
      return;
    }
    if (catalogue_known_) {
      *failed = absl::NotFoundError(NotFoundMessageLocked(name));
      return;
    }
    if (!last_refresh_.ok()) {
      *failed = absl::Status(last_refresh_.code(),
                             absl::StrCat("cannot tell whether model \"", name,
                                          "\" exists: listing the LM Studio host's models failed: ",
                                          last_refresh_.message()));
      return;
    }
    // The host lists no downloads (e.g. only the OpenAI interface): its load decides.
  }
  const std::string key = m != nullptr ? m->info.key : name;
  LoadParams params;
  std::shared_ptr<const ModelPolicy> policy = PolicyFor(key);
  if (policy != nullptr) params = policy->load;
  params.identifier.clear();
  waiter->ttl_override = options_.allow_client_ttl ? waiter->request.ttl_hint : std::nullopt;
  JoinOrStartFlightLocked(key, std::move(params), waiter->request.load_driver,
                          /*explicit_load=*/false, policy && policy->keep_loaded, waiter);
}

void ModelRegistry::Acquire(const CallContext& ctx, AcquireRequest request, AcquireDone done) {
  if (auto st = ctx.CheckAlive(); !st.ok()) {
    done(st);
    return;
  }
  auto waiter = std::make_shared<Waiter>();
  waiter->request = std::move(request);
  waiter->acquire_done = std::move(done);
  waiter->token = ctx.cancel;
  waiter->deadline = ctx.deadline;
  waiter->started = Now();
  std::unique_ptr<Lease> lease;
  absl::Status failed;
  {
    Locked lock(this);
    RouteLocked(waiter, /*may_defer=*/true, &lease, &failed);
  }
  if (lease || !failed.ok()) {
    auto cb = std::move(waiter->acquire_done);
    if (lease) {
      cb(std::move(lease));
    } else {
      cb(std::move(failed));
    }
    return;
  }
  std::weak_ptr<Waiter> weak = waiter;
  waiter->cancel.Register(waiter->token, [this, weak] {
    if (auto w = weak.lock()) {
      w->cancelled_inline = true;
      RemoveWaiter(w, absl::CancelledError("the call was cancelled while its model loaded"));
    }
  });
}

absl::StatusOr<std::unique_ptr<Lease>> ModelRegistry::AcquireBlocking(const CallContext& ctx,
                                                                      AcquireRequest request) {
  absl::Notification done;
  absl::StatusOr<std::unique_ptr<Lease>> out = absl::UnknownError("not set");
  Acquire(ctx, std::move(request), [&](absl::StatusOr<std::unique_ptr<Lease>> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

void ModelRegistry::RemoveWaiter(const std::shared_ptr<Waiter>& w, absl::Status why) {
  std::shared_ptr<backends::CancelToken> cancel_flight;
  {
    Locked lock(this);
    if (w->finished) return;
    w->finished = true;
    if (auto f = w->flight.lock(); f && !f->done) {
      auto& ws = f->waiters;
      ws.erase(std::remove(ws.begin(), ws.end(), w), ws.end());
      if (ws.empty() && f->link->LocalWaiters(0)) {
        // Nobody waits any more: give the host its memory back instead of finishing the load.
        // (A flight other gateways still wait for stays, to be joined again or abandoned.)
        cancel_flight = f->cancel;
        auto it = flights_.find(f->key);
        if (it != flights_.end() && it->second == f) flights_.erase(it);
      }
    } else {
      unresolved_.erase(std::remove(unresolved_.begin(), unresolved_.end(), w), unresolved_.end());
    }
  }
  if (cancel_flight) cancel_flight->Cancel();
  CompleteWaiter(w, std::move(why), nullptr, {});
}

void ModelRegistry::CompleteWaiter(const std::shared_ptr<Waiter>& w, absl::Status status,
                                   std::unique_ptr<Lease> lease, InstanceSnapshot snapshot) {
  w->cancel.Complete(/*from_callback=*/w->cancelled_inline);
  if (w->acquire_done) {
    auto cb = std::move(w->acquire_done);
    if (status.ok()) {
      cb(std::move(lease));
    } else {
      cb(status);
    }
  } else if (w->load_done) {
    auto cb = std::move(w->load_done);
    if (status.ok()) {
      cb(std::move(snapshot));
    } else {
      cb(status);
    }
  }
}

void ModelRegistry::ResolveUnknown() {
  struct Done {
    std::shared_ptr<Waiter> waiter;
    std::unique_ptr<Lease> lease;
    absl::Status status;
  };
  std::vector<Done> done;
  {
    Locked lock(this);
    std::vector<std::shared_ptr<Waiter>> pending;
    pending.swap(unresolved_);
    for (auto& w : pending) {
      if (w->finished) continue;
      Done d;
      RouteLocked(w, /*may_defer=*/false, &d.lease, &d.status);
      if (d.lease || !d.status.ok()) {
        w->finished = true;
        d.waiter = w;
        done.push_back(std::move(d));
      }
    }
  }
  for (auto& d : done) {
    absl::Status st = d.lease ? absl::OkStatus() : d.status;
    CompleteWaiter(d.waiter, std::move(st), std::move(d.lease), {});
  }
}

void ModelRegistry::FailLateWaiters() {
  std::vector<std::shared_ptr<Waiter>> late;
  {
    Locked lock(this);
    const absl::Time now = absl::Now();
    for (auto& [k, f] : flights_) {
      for (auto& w : f->waiters) {
        if (now >= w->deadline) late.push_back(w);
      }
    }
    for (auto& w : unresolved_) {
      if (now >= w->deadline) late.push_back(w);
    }
  }
  for (auto& w : late) {
    RemoveWaiter(w, absl::DeadlineExceededError("the deadline passed while the model loaded"));
  }
}

}  // namespace lmgate::lifecycle
