// ModelRegistry: idle TTLs, pins (keep_loaded) and run-time policy changes.
#include "services/lifecycle/registry.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "backends/backoff.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {
namespace {

// A failed pin load is retried after 1 s, 2 s, 4 s ... 60 s (no jitter: one registry, one host).
constexpr backends::BackoffPolicy kPinRetryBackoff{absl::Seconds(1), absl::Seconds(60), 2.0, 0.0};

}  // namespace

std::optional<absl::Duration> ModelRegistry::TtlFor(const ModelPolicy* policy) const {
  std::optional<absl::Duration> ttl = policy && policy->ttl ? policy->ttl : options_.default_ttl;
  if (ttl == absl::InfiniteDuration()) ttl.reset();
  return ttl;
}

void ModelRegistry::ApplyPolicyLocked(const std::string& key, const ModelPolicy* before,
                                      const ModelPolicy* after) {
  const bool pin_before = before && before->keep_loaded;
  const bool pin_after = after && after->keep_loaded;
  const std::optional<absl::Duration> ttl_before = TtlFor(before);
  const std::optional<absl::Duration> ttl_after = TtlFor(after);
  if (pin_before == pin_after && ttl_before == ttl_after) return;
  auto it = models_.find(key);
  if (it == models_.end()) return;
  const absl::Time now = Now();
  for (auto& inst : it->second->instances) {
    if (pin_before != pin_after) inst->keep_loaded = pin_after;
    if (ttl_before != ttl_after) {
      inst->ttl = ttl_after;
      inst->ttl_from = now;  // idle time counts from the change
    }
  }
  if (pin_after) pin_retry_.erase(key);  // a new pin loads now, not after an old backoff
}

absl::StatusOr<ModelRegistry::PolicyView> ModelRegistry::UpdatePolicy(const std::string& model,
                                                                      const PolicyUpdate& update,
                                                                      bool reset,
                                                                      bool make_default) {
  PolicyView view;
  {
    Locked lock(this);
    std::string key;
    if (models_.count(model) || policies_.For(model) != nullptr) {
      key = model;
    } else if (auto [m, inst] = FindInstanceLocked(model); m != nullptr) {
      key = m->info.key;
    } else {
      return absl::NotFoundError(NotFoundMessageLocked(model));
    }
    std::shared_ptr<const ModelPolicy> before = policies_.For(key);
    policies_.Update(key, update, reset, make_default);
    std::shared_ptr<const ModelPolicy> after = policies_.For(key);
    ApplyPolicyLocked(key, before.get(), after.get());
    view.model_key = key;
    if (after) view.policy = *after;
    view.policy.ttl = TtlFor(after.get());  // what its instances get (unset = never expire)
  }
  view.is_default = policies_.default_model() == view.model_key;
  view.overridden = policies_.Overridden(view.model_key);
  LoadPinned();
  return view;
}

std::vector<std::string> ModelRegistry::ReplaceFilePolicies(
    std::map<std::string, ModelPolicy> models, std::string default_model) {
  std::vector<std::string> overridden;
  {
    Locked lock(this);
    std::shared_ptr<const Policies> before = policies_.Current();
    overridden = policies_.ReplaceFile(std::move(models), std::move(default_model));
    std::shared_ptr<const Policies> after = policies_.Current();
    std::set<std::string> keys;
    for (const auto& [k, p] : before->models) keys.insert(k);
    for (const auto& [k, p] : after->models) keys.insert(k);
    for (const auto& k : keys) {
      auto b = before->models.find(k);
      auto a = after->models.find(k);
      ApplyPolicyLocked(k, b == before->models.end() ? nullptr : &b->second,
                        a == after->models.end() ? nullptr : &a->second);
    }
  }
  LoadPinned();
  return overridden;
}

void ModelRegistry::ExpireIdle() {
  std::vector<std::string> expired;
  {
    Locked lock(this);
    const absl::Time now = Now();
    for (auto& [k, m] : models_) {
      for (auto& inst : m->instances) {
        if (inst->state != State::kReady || inst->keep_loaded || !inst->ttl) continue;
        const InstanceKey key = KeyOf(*inst);
        if (leases_->Count(key) > 0) continue;
        if (now - std::max(leases_->LastUse(key).value_or(inst->added_at), inst->ttl_from) >=
                *inst->ttl &&
            leases_->ReserveUnload(key, UnloadReason::kExpired, /*force=*/false, *inst->ttl, now)
                .granted) {
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
        retry.failures = 0;
        retry.next = absl::InfinitePast();
      } else {
        // The flight published kLoadFailed with the host's reason (the observer logs it); the
        // maintenance loop retries after the backoff.
        retry.next = Now() + backends::Backoff(kPinRetryBackoff, retry.failures++, 0);
      }
    };
    JoinOrStartFlightLocked(key, std::move(params), DriverKind::kAuto, /*explicit_load=*/false,
                            /*keep_loaded=*/true, waiter);
  }
}

}  // namespace lmgate::lifecycle
