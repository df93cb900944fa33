#include "services/lifecycle/registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

using backends::InstanceInfo;
using backends::LoadParams;

// ---------------------------------------------------------------- DriverHostOps

namespace {

// The outcome of a fallback chain worth reporting: the last attempt's, unless that driver could
// not run at all (FAILED_PRECONDITION, e.g. the cli driver without an `lms` binary) after an
// earlier one found the host unavailable — then the host being unreachable is the news, and
// UNAVAILABLE keeps the call retryable.
absl::Status Reported(const absl::Status& first_unavailable, const absl::Status& last) {
  if (!first_unavailable.ok() && absl::IsFailedPrecondition(last)) return first_unavailable;
  return last;
}

}  // namespace

absl::StatusOr<backends::HostModels> DriverHostOps::List(const CallContext& ctx) {
  auto candidates = drivers_->Candidates(DriverKind::kAuto, backends::Operation::kListModels);
  if (!candidates.ok()) return candidates.status();
  absl::StatusOr<backends::HostModels> last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  for (backends::Driver* d : *candidates) {
    last = d->ListModels(ctx);
    if (last.ok()) {
      absl::MutexLock lock(&mu_);
      last_listed_ = d->kind();
    }
    if (!absl::IsUnavailable(last.status())) break;
    if (first_unavailable.ok()) first_unavailable = last.status();
  }
  if (last.ok()) return last;
  return Reported(first_unavailable, last.status());
}

std::optional<DriverKind> DriverHostOps::last_listed() const {
  absl::MutexLock lock(&mu_);
  return last_listed_;
}

absl::StatusOr<InstanceInfo> DriverHostOps::Load(const CallContext& ctx, DriverKind driver,
                                                 const LoadParams& params,
                                                 const backends::LoadProgressFn& progress,
                                                 DriverKind* used) {
  auto candidates = drivers_->Candidates(driver, backends::Operation::kLoad);
  if (!candidates.ok()) return candidates.status();
  absl::StatusOr<InstanceInfo> last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  DriverKind first_unavailable_kind = DriverKind::kAuto;
  for (backends::Driver* d : *candidates) {
    if (used) *used = d->kind();
    last = d->Load(ctx, params, progress);
    if (!absl::IsUnavailable(last.status())) break;
    if (first_unavailable.ok()) {
      first_unavailable = last.status();
      first_unavailable_kind = d->kind();
    }
  }
  if (last.ok()) return last;
  absl::Status reported = Reported(first_unavailable, last.status());
  if (used && reported.code() != last.status().code()) *used = first_unavailable_kind;
  return reported;
}

absl::Status DriverHostOps::Unload(const CallContext& ctx, DriverKind driver,
                                   const std::string& identifier, DriverKind* used) {
  auto candidates = drivers_->Candidates(driver, backends::Operation::kUnload);
  if (!candidates.ok()) return candidates.status();
  absl::Status last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  DriverKind first_unavailable_kind = DriverKind::kAuto;
  for (backends::Driver* d : *candidates) {
    if (used) *used = d->kind();
    last = d->Unload(ctx, identifier);
    if (!absl::IsUnavailable(last)) break;
    if (first_unavailable.ok()) {
      first_unavailable = last;
      first_unavailable_kind = d->kind();
    }
  }
  absl::Status reported = Reported(first_unavailable, last);
  if (used && reported.code() != last.code()) *used = first_unavailable_kind;
  return reported;
}

// ---------------------------------------------------------------- Lease

Lease::~Lease() {
  if (registry_ != nullptr) registry_->ReleaseLease(instance_, id_);
}

// ---------------------------------------------------------------- ModelRegistry

ModelRegistry::ModelRegistry(RegistryOptions options, HostOps* host, EventBus* events)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : admission::RealClock()),
      policies_(options_.models, options_.default_model),
      host_(host),
      events_(events),
      outbox_(events) {}

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Create(RegistryOptions options,
                                                                     HostOps* host,
                                                                     EventBus* events) {
  if (host == nullptr || events == nullptr) {
    return absl::InvalidArgumentError("ModelRegistry needs a HostOps and an EventBus");
  }
  if (options.tick <= absl::ZeroDuration()) return absl::InvalidArgumentError("tick must be > 0");
  std::unique_ptr<ModelRegistry> r(new ModelRegistry(std::move(options), host, events));
  // A host that is down at start is not fatal: requests will retry the sync.
  (void)r->Refresh(r->HostContext(r->options_.host_call_timeout));
  r->maintenance_ = std::thread([p = r.get()] { p->MaintenanceLoop(); });
  return r;
}

ModelRegistry::~ModelRegistry() {
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::vector<std::shared_ptr<backends::CancelToken>> cancels;
  {
    Locked lock(this);
    stopping_ = true;
    for (auto& [k, f] : flights_) {
      cancels.push_back(f->cancel);
      for (auto& w : f->waiters) waiters.push_back(w);
    }
    for (auto& w : unresolved_) waiters.push_back(w);
  }
  for (auto& w : waiters) RemoveWaiter(w, absl::UnavailableError("lmgate is shutting down"));
  for (auto& c : cancels) c->Cancel();
  if (maintenance_.joinable()) maintenance_.join();
  // Join every load thread: one that is still unlocking mu_ or completing its waiters must not
  // outlive the registry. No new flight starts once stopping_ is set.
  for (;;) {
    std::map<uint64_t, std::thread> threads;
    {
      Locked lock(this);
      threads.swap(flight_threads_);
      finished_flight_threads_.clear();
    }
    if (threads.empty()) break;
    for (auto& [id, t] : threads) t.join();
  }
}

void ModelRegistry::ReapFlightThreads() {
  std::vector<std::thread> finished;
  {
    Locked lock(this);
    for (uint64_t id : finished_flight_threads_) {
      auto it = flight_threads_.find(id);
      if (it == flight_threads_.end()) continue;
      finished.push_back(std::move(it->second));
      flight_threads_.erase(it);
    }
    finished_flight_threads_.clear();
  }
  // Outside mu_: a finished thread may still be releasing it and delivering queued events, whose
  // subscribers may take mu_. It has nothing else left to do, so the join is brief.
  for (auto& t : finished) t.join();
}

CallContext ModelRegistry::HostContext(absl::Duration timeout) const {
  CallContext ctx;
  ctx.deadline = absl::Now() + timeout;
  ctx.cancel = std::make_shared<backends::CancelToken>();
  ctx.request_id = "lifecycle";
  return ctx;
}

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

void ModelRegistry::Publish(Event::Kind kind, const std::string& key, const std::string& instance,
                            State state, std::string reason, double progress, absl::Duration took,
                            std::string tenant) {
  Event e;
  e.kind = kind;
  e.model_key = key;
  e.instance = instance;
  e.state = state;
  e.reason = std::move(reason);
  e.tenant = std::move(tenant);
  e.progress = progress;
  e.duration = took;
  outbox_.Add(std::move(e));
}

ModelRegistry::ModelEntry* ModelRegistry::FindModelLocked(const std::string& key) {
  auto it = models_.find(key);
  return it == models_.end() ? nullptr : it->second.get();
}

std::pair<ModelRegistry::ModelEntry*, ModelRegistry::InstanceEntry*>
ModelRegistry::FindInstanceLocked(const std::string& identifier) {
  for (auto& [k, m] : models_) {
    for (auto& inst : m->instances) {
      if (inst->info.identifier == identifier) return {m.get(), inst.get()};
    }
  }
  return {nullptr, nullptr};
}

ModelRegistry::InstanceEntry* ModelRegistry::PickReadyLocked(ModelEntry& m) {
  InstanceEntry* best = nullptr;
  for (auto& inst : m.instances) {
    if (inst->state != State::kReady) continue;
    if (best == nullptr || inst->leases.size() < best->leases.size()) best = inst.get();
  }
  return best;
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

std::string ModelRegistry::NotFoundMessageLocked(const std::string& model) const {
  std::vector<std::string> close, all;
  std::string lower = absl::AsciiStrToLower(model);
  for (const auto& [k, m] : models_) {
    if (!m->downloaded) continue;
    all.push_back(k);
    std::string lk = absl::AsciiStrToLower(k);
    if (absl::StrContains(lk, lower) || absl::StrContains(lower, lk.substr(lk.find('/') + 1))) {
      close.push_back(k);
    }
  }
  const auto& list = close.empty() ? all : close;
  return absl::StrCat("model \"", model, "\" is not downloaded on the LM Studio host",
                      list.empty() ? "" : (close.empty() ? "; available: " : "; did you mean: "),
                      absl::StrJoin(list, ", "));
}

State ModelRegistry::ModelStateLocked(const ModelEntry& m) const {
  bool unloading = false;
  for (const auto& inst : m.instances) {
    if (inst->state == State::kReady) return State::kReady;
    unloading |= inst->state == State::kUnloading;
  }
  if (m.loading > 0) return State::kLoading;
  if (unloading) return State::kUnloading;
  if (!m.failure.empty()) return State::kFailed;
  return State::kNotLoaded;
}

// ---------------------------------------------------------------- Acquire

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
    return;
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

// ---------------------------------------------------------------- Flights

void ModelRegistry::JoinOrStartFlightLocked(const std::string& model_key, LoadParams params,
                                            DriverKind driver, bool explicit_load,
                                            bool keep_loaded, std::shared_ptr<Waiter> waiter) {
  params.model_key = model_key;
  std::string fkey = FlightKey(params, driver);
  if (waiter->unique_flight) absl::StrAppend(&fkey, "#", next_lease_id_++);
  auto it = flights_.find(fkey);
  if (it != flights_.end()) {
    waiter->flight = it->second;
    it->second->waiters.push_back(std::move(waiter));
    it->second->keep_loaded |= keep_loaded;
    return;
  }
  auto f = std::make_shared<Flight>();
  f->key = fkey;
  f->model_key = model_key;
  f->params = std::move(params);
  f->driver = driver;
  f->keep_loaded = keep_loaded;
  f->explicit_load = explicit_load;
  f->ttl = waiter->ttl_override;
  f->requested_by = waiter->request.tenant;
  waiter->flight = f;
  f->waiters.push_back(std::move(waiter));
  flights_[fkey] = f;
  ModelEntry* m = FindModelLocked(model_key);
  if (m != nullptr) {
    ++m->loading;
    m->progress = 0;
  }
  f->counted_loading = m != nullptr;
  std::string why = explicit_load ? "LoadModel" : "a request needs it";
  if (!f->requested_by.empty()) absl::StrAppend(&why, " (tenant ", f->requested_by, ")");
  Publish(Event::Kind::kLoadStarted, model_key, "", State::kLoading, std::move(why), 0,
          absl::ZeroDuration(), f->requested_by);
  const uint64_t thread_id = next_flight_thread_++;
  flight_threads_.emplace(thread_id, std::thread([this, f, thread_id] {
    RunFlight(f);
    Locked lock(this);
    finished_flight_threads_.push_back(thread_id);
  }));
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
      if (ws.empty()) {
        // Nobody waits any more: give the host its memory back instead of finishing the load.
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

}  // namespace lmgate::lifecycle
