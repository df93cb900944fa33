// ModelRegistry: synchronisation with the host, TTL expiry and the maintenance thread.
#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/lifecycle/registry.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

absl::Status ModelRegistry::Refresh(const CallContext& ctx) {
  std::optional<absl::Time> started;
  {
    Locked lock(this);
    // One listing at a time: a caller arriving while one is in flight shares its answer.
    while (refresh_in_flight_) {
      const uint64_t gen = refresh_generation_;
      auto done = [this, gen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return refresh_generation_ != gen;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&done), ctx.deadline)) {
        return absl::DeadlineExceededError(
            "the deadline passed while lmgate re-read the LM Studio host's models");
      }
      // The leader's caller leaving (its cancel or deadline) is not this caller's answer.
      const bool leader_left =
          absl::IsCancelled(shared_refresh_) || absl::IsDeadlineExceeded(shared_refresh_);
      if (!leader_left || !ctx.CheckAlive().ok()) return shared_refresh_;
    }
    refresh_in_flight_ = true;
    started = Now();
  }
  const absl::Time listed_at = Now();
  auto host = host_->List(ctx);
  if (host.ok()) Reconcile(*host, listed_at);
  // A listing cut short by its own caller says nothing about the host.
  const bool aborted = !host.ok() && !ctx.CheckAlive().ok();
  {
    Locked lock(this);
    if (!aborted) {
      host_status_ = host.status();
      last_refresh_ = host.status();
      last_refresh_at_ = started;
    }
    shared_refresh_ = host.status();
    refresh_in_flight_ = false;
    ++refresh_generation_;
  }
  // At start and after the host came back (its state lost): pins load without a first request.
  if (host.ok()) LoadPinned();
  return host.status();
}

void ModelRegistry::LoadPinned() {
  Locked lock(this);
  if (stopping_ || !host_status_.ok()) return;
  const absl::Time now = Now();
  const std::shared_ptr<const Policies> policies = policies_.Current();
  for (const auto& [key, policy] : policies->models) {
    if (!policy.keep_loaded) continue;
    ModelEntry* m = FindModelLocked(key);
    if (m != nullptr && (PickReadyLocked(*m) != nullptr || m->loading > 0)) continue;
    if (catalogue_known_ && m == nullptr) continue;  // not on this host: nothing to load
    PinRetry& retry = pin_retry_[key];
    if (retry.in_flight || now < retry.next) continue;
    retry.in_flight = true;
    // The request path's flight key (policy load settings, AUTO driver): a request arriving
    // meanwhile joins this load instead of starting a second one.
    backends::LoadParams params = policy.load;
    params.identifier.clear();
    auto waiter = std::make_shared<Waiter>();
    waiter->request.holder = "keep_loaded";
    waiter->started = now;
    waiter->load_done = [this, key = key](absl::StatusOr<InstanceSnapshot> r) {
      Locked lock(this);
      PinRetry& retry = pin_retry_[key];
      retry.in_flight = false;
      if (r.ok()) {
        retry.backoff = absl::ZeroDuration();
        retry.next = absl::InfinitePast();
      } else {
        // The flight published kLoadFailed with the host's reason (the observer logs it); the
        // maintenance loop retries after the backoff.
        retry.backoff = std::min(absl::Seconds(60), std::max(absl::Seconds(1), retry.backoff * 2));
        retry.next = Now() + retry.backoff;
      }
    };
    JoinOrStartFlightLocked(key, std::move(params), DriverKind::kAuto, /*explicit_load=*/false,
                            /*keep_loaded=*/true, waiter);
  }
}

absl::Status ModelRegistry::RefreshIfStale(const CallContext& ctx) {
  return RefreshIfOlder(ctx, options_.unknown_model_cache);
}

absl::Status ModelRegistry::RefreshIfOlder(const CallContext& ctx, absl::Duration max_age) {
  {
    Locked lock(this);
    if (last_refresh_at_.has_value() && Now() - *last_refresh_at_ < max_age) return last_refresh_;
  }
  return Refresh(ctx);
}

bool ModelRegistry::ListingFreshLocked() const {
  return last_refresh_at_.has_value() && Now() - *last_refresh_at_ < options_.unknown_model_cache;
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

absl::Status ModelRegistry::host_status() const {
  Locked lock(this);
  return host_status_;
}

std::set<std::string> ModelRegistry::CustomIdentifiersLocked(
    const backends::HostModels& host) const {
  std::set<std::string> names;
  if (host.loaded_known) {
    for (const auto& li : host.loaded) {
      if (li.identifier != li.model_key) names.insert(li.identifier);
    }
  }
  for (const auto& [key, m] : models_) {
    for (const auto& inst : m->instances) {
      if (inst->info.identifier != key) names.insert(inst->info.identifier);
    }
  }
  return names;
}

void ModelRegistry::Reconcile(const backends::HostModels& host, absl::Time listed_at) {
  Locked lock(this);
  // The host answers again: a load that failed only because it could not be reached is no
  // longer a reason to report the model FAILED (the next request loads it).
  for (auto& [k, m] : models_) {
    if (m->failure_transient) {
      m->failure.clear();
      m->failure_transient = false;
    }
  }
  if (host.downloaded_known) {
    // Some listings (the real host's /api/v0/models) show an instance with a custom identifier
    // as a row of its own: an entry whose id is a loaded instance's identifier is that instance,
    // never a downloaded model.
    const std::set<std::string> instance_names = CustomIdentifiersLocked(host);
    std::set<std::string> listed;
    for (const auto& info : host.downloaded) {
      if (instance_names.count(info.key)) continue;
      listed.insert(info.key);
      auto& entry = models_[info.key];
      if (!entry) entry = std::make_unique<ModelEntry>();
      entry->info = info;
      entry->downloaded = true;
    }
    for (auto& [k, m] : models_) {
      if (!listed.count(k)) m->downloaded = false;
    }
    catalogue_known_ = true;
  }
  if (!host.loaded_known) return;  // e.g. the OpenAI interface with JIT on
  std::set<std::string> seen;
  for (const auto& li : host.loaded) {
    seen.insert(li.identifier);
    auto [m, inst] = FindInstanceLocked(li.identifier);
    if (inst != nullptr) {
      // Keep lmgate's own TTL and pin; take the host's facts.
      inst->info.context_length = li.context_length;
      inst->info.instance_reference = li.instance_reference;
      if (li.parallel_slots > 0) inst->info.parallel_slots = li.parallel_slots;
      continue;
    }
    ModelEntry* model = FindModelLocked(li.model_key);
    if (model == nullptr) {
      auto entry = std::make_unique<ModelEntry>();
      entry->info.key = li.model_key;
      entry->info.display_name = li.model_key;
      entry->info.type = li.type;
      model = entry.get();
      models_[li.model_key] = std::move(entry);
    }
    if (model->loading > 0) continue;  // our own load will register it
    auto e = std::make_unique<InstanceEntry>();
    e->info = li;
    e->external = true;
    e->added_at = Now();
    e->ttl = li.ttl;  // LM Studio's own TTL applies to what it loaded itself
    // A model with a policy is lmgate's to manage whoever loaded it (e.g. the lmgate this one
    // replaced): its TTL and pin apply, so a rollout does not leak loaded instances.
    std::string reason = "loaded outside lmgate";
    if (std::shared_ptr<const ModelPolicy> policy = PolicyFor(li.model_key);
        policy != nullptr && (policy->ttl || policy->keep_loaded)) {
      e->ttl = TtlFor(policy.get());
      e->keep_loaded = policy->keep_loaded;
      reason += policy->keep_loaded ? "; pinned by its policy" : "; under its policy's TTL";
    }
    model->instances.push_back(std::move(e));
    Publish(Event::Kind::kExternalChange, li.model_key, li.identifier, State::kReady, reason);
  }
  for (auto& [k, m] : models_) {
    auto& v = m->instances;
    for (auto it = v.begin(); it != v.end();) {
      InstanceEntry& inst = **it;
      if (inst.state == State::kReady && !seen.count(inst.info.identifier) &&
          inst.added_at < listed_at) {
        Publish(Event::Kind::kExternalChange, k, inst.info.identifier, State::kNotLoaded,
                "unloaded outside lmgate (LM Studio app, lms, or LM Studio's own TTL)");
        it = v.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void ModelRegistry::ReportMissing(const std::string& instance) {
  Locked lock(this);
  for (auto& [k, m] : models_) {
    auto& v = m->instances;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if ((*it)->info.identifier == instance && (*it)->state == State::kReady) {
        Publish(Event::Kind::kExternalChange, k, instance, State::kNotLoaded,
                "the host no longer has this instance");
        v.erase(it);
        refresh_wanted_ = true;
        return;
      }
    }
  }
  refresh_wanted_ = true;
}

void ModelRegistry::ExpireIdle() {
  std::vector<std::string> expired;
  {
    Locked lock(this);
    const absl::Time now = Now();
    for (auto& [k, m] : models_) {
      for (auto& inst : m->instances) {
        if (inst->state != State::kReady || !inst->leases.empty() || inst->keep_loaded ||
            !inst->ttl) {
          continue;
        }
        if (now - std::max(inst->last_used.value_or(inst->added_at), inst->ttl_from) >=
            *inst->ttl) {
          inst->state = State::kUnloading;
          expired.push_back(inst->info.identifier);
        }
      }
    }
  }
  for (const auto& id : expired) {
    (void)UnloadOne(HostContext(options_.host_call_timeout), DriverKind::kAuto, id,
                    Event::Kind::kExpired, "idle TTL expired");
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

void ModelRegistry::MaintenanceLoop() {
  absl::Time next_refresh = Now() + options_.refresh_interval;
  for (;;) {
    bool refresh = false;
    bool resolve = false;
    {
      Locked lock(this);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || refresh_wanted_ || !unresolved_.empty();
      };
      clock_->AwaitUntil(&mu_, absl::Condition(&wake), Now() + options_.tick);
      if (stopping_) return;
      refresh = refresh_wanted_ ||
                (options_.refresh_interval > absl::ZeroDuration() && Now() >= next_refresh);
      refresh_wanted_ = false;
      resolve = !unresolved_.empty();
    }
    ReapFlightThreads();
    ExpireIdle();
    FailLateWaiters();
    LoadPinned();  // a failed pin load, once its backoff passed
    if (refresh) {
      next_refresh = Now() + options_.refresh_interval;
      (void)Refresh(HostContext(options_.host_call_timeout));
    }
    if (resolve) {
      // Every miss that waited since the last pass shares one re-read (none if still fresh).
      if (!refresh) (void)RefreshIfStale(HostContext(options_.host_call_timeout));
      ResolveUnknown();
    }
  }
}

}  // namespace lmgate::lifecycle
