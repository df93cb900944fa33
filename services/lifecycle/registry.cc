// ModelRegistry: construction, shutdown, the maintenance thread, lookups and snapshots.
#include "services/lifecycle/registry.h"

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

ModelRegistry::ModelRegistry(RegistryOptions options, HostOps* host, EventBus* events)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : admission::RealClock()),
      policies_(options_.models, options_.default_model),
      host_(host),
      events_(events),
      outbox_(events),
      leases_(options_.lease_table ? options_.lease_table()
                                    : std::make_unique<LocalLeaseTable>()),
      load_flights_(options_.load_flights ? options_.load_flights()
                                          : std::make_unique<LocalFlights>()) {}

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
  // The first pass is due one tick after Create, on the caller's clock reading: a thread that
  // starts late must not push it past time the caller has already advanced.
  r->maintenance_ =
      std::thread([p = r.get(), started = r->Now()] { p->MaintenanceLoop(started); });
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

CallContext ModelRegistry::HostContext(absl::Duration timeout) const {
  CallContext ctx;
  ctx.deadline = absl::Now() + timeout;
  ctx.cancel = std::make_shared<backends::CancelToken>();
  ctx.request_id = "lifecycle";
  return ctx;
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
    if (best == nullptr || leases_->Count(KeyOf(*inst)) < leases_->Count(KeyOf(*best))) {
      best = inst.get();
    }
  }
  return best;
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

InstanceSnapshot ModelRegistry::SnapshotLocked(const InstanceEntry& inst) const {
  InstanceSnapshot s;
  s.info = inst.info;
  s.state = inst.state;
  const InstanceKey key = KeyOf(inst);
  s.in_flight = leases_->Count(key);
  s.keep_loaded = inst.keep_loaded;
  s.ttl = inst.ttl;
  s.last_used = leases_->LastUse(key);
  s.holders = leases_->Holders(key);
  s.info.ttl = inst.ttl;
  if (s.last_used) s.info.last_used = s.last_used;
  s.load_config = inst.sent;
  s.load_config.model_key = inst.info.model_key;
  s.load_config.identifier = inst.info.identifier;
  // What the host reports wins over what was asked (it may clamp or default them).
  if (inst.info.context_length > 0) s.load_config.context_length = inst.info.context_length;
  if (inst.info.parallel_slots > 0) s.load_config.parallel_slots = inst.info.parallel_slots;
  s.load_config.ttl = inst.ttl;
  return s;
}

ModelSnapshot ModelRegistry::SnapshotLocked(const ModelEntry& m) const {
  ModelSnapshot s;
  s.info = m.info;
  s.downloaded = m.downloaded;
  s.state = ModelStateLocked(m);
  s.reason = m.failure;
  s.load_progress = m.progress;
  for (const auto& inst : m.instances) s.instances.push_back(SnapshotLocked(*inst));
  return s;
}

std::vector<ModelSnapshot> ModelRegistry::Snapshot() const {
  Locked lock(this);
  std::vector<ModelSnapshot> out;
  for (const auto& [k, m] : models_) out.push_back(SnapshotLocked(*m));
  return out;
}

absl::StatusOr<ModelSnapshot> ModelRegistry::Get(const std::string& model) const {
  Locked lock(this);
  for (const auto& [k, m] : models_) {
    if (k == model) return SnapshotLocked(*m);
    for (const auto& inst : m->instances) {
      if (inst->info.identifier == model) return SnapshotLocked(*m);
    }
  }
  return absl::NotFoundError(NotFoundMessageLocked(model));
}

std::string ModelRegistry::KnownModelKey(const std::string& name) const {
  Locked lock(this);
  if (models_.count(name) || PolicyFor(name) != nullptr) return name;
  for (const auto& [k, m] : models_) {
    for (const auto& inst : m->instances) {
      if (inst->info.identifier == name) return k;
    }
  }
  return "";
}

bool ModelRegistry::ModelReady(const std::string& model_key) const {
  Locked lock(this);
  auto it = models_.find(model_key);
  if (it == models_.end()) return false;
  for (const auto& inst : it->second->instances) {
    if (inst->state == State::kReady) return true;
  }
  return false;
}

absl::Status ModelRegistry::host_status() const {
  Locked lock(this);
  return host_status_;
}

void ModelRegistry::MaintenanceLoop(absl::Time started) {
  absl::Time next_refresh = started + options_.refresh_interval;
  // The next pass is due one tick after the previous one began, not one tick after it ended:
  // time that moves during a pass (a slow unload, or a test's SimulatedClock::Advance) makes the
  // next pass due at once instead of being waited past.
  absl::Time next_pass = started + options_.tick;
  for (;;) {
    bool refresh = false;
    bool resolve = false;
    {
      Locked lock(this);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || refresh_wanted_ || !unresolved_.empty();
      };
      clock_->AwaitUntil(&mu_, absl::Condition(&wake), next_pass);
      if (stopping_) return;
      next_pass = Now() + options_.tick;
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
