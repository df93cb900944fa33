// ModelRegistry: synchronisation with the host: shared listings, their age, reconciling the
// view with what the host lists.
#include "services/lifecycle/registry.h"

#include <optional>
#include <set>
#include <utility>

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
        leases_->FinishUnload(KeyOf(inst), /*unloaded=*/true);  // its leases end with it
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
        leases_->FinishUnload(KeyOf(instance), /*unloaded=*/true);
        v.erase(it);
        refresh_wanted_ = true;
        return;
      }
    }
  }
  refresh_wanted_ = true;
}

}  // namespace lmgate::lifecycle
