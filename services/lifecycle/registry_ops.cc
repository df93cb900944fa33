// ModelRegistry: running loads (flights), capacity, explicit load/unload, snapshots.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/lifecycle/registry.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

using backends::InstanceInfo;
using backends::LoadParams;

namespace {

// Fills unset load settings from the model's policy.
void MergePolicy(const LoadParams& policy, LoadParams* p) {
  if (!p->context_length) p->context_length = policy.context_length;
  if (!p->gpu_offload_ratio) p->gpu_offload_ratio = policy.gpu_offload_ratio;
  if (!p->cpu_threads) p->cpu_threads = policy.cpu_threads;
  if (!p->rope_frequency_base) p->rope_frequency_base = policy.rope_frequency_base;
  if (!p->rope_frequency_scale) p->rope_frequency_scale = policy.rope_frequency_scale;
  if (!p->flash_attention) p->flash_attention = policy.flash_attention;
  if (!p->parallel_slots) p->parallel_slots = policy.parallel_slots;
  if (!p->eval_batch_size) p->eval_batch_size = policy.eval_batch_size;
}

// The settings `want` sets that `have` (an instance's SnapshotLocked().load_config) does not
// match, as "name wanted (loaded: value)"; empty when every one matches. A setting the instance
// does not know (loaded outside lmgate) does not match.
std::vector<std::string> ConfigConflicts(const LoadParams& want, const LoadParams& have) {
  std::vector<std::string> out;
  auto check = [&out](const char* name, const auto& w, const auto& h) {
    if (!w || (h && *h == *w)) return;
    out.push_back(absl::StrCat(name, " ", *w, " (loaded: ", h ? absl::StrCat(*h) : "unknown",
                               ")"));
  };
  check("context_length", want.context_length, have.context_length);
  check("gpu_offload_ratio", want.gpu_offload_ratio, have.gpu_offload_ratio);
  check("cpu_threads", want.cpu_threads, have.cpu_threads);
  check("rope_frequency_base", want.rope_frequency_base, have.rope_frequency_base);
  check("rope_frequency_scale", want.rope_frequency_scale, have.rope_frequency_scale);
  check("flash_attention", want.flash_attention, have.flash_attention);
  check("parallel_slots", want.parallel_slots, have.parallel_slots);
  check("eval_batch_size", want.eval_batch_size, have.eval_batch_size);
  if (want.ttl && want.ttl != have.ttl) {
    out.push_back(absl::StrCat("ttl ", absl::FormatDuration(*want.ttl), " (loaded: ",
                               have.ttl ? absl::FormatDuration(*have.ttl) : "none", ")"));
  }
  return out;
}

// What waiters see when a load fails: the host's reason, with a code they can act on.
absl::Status WaiterStatus(const absl::Status& st, const std::string& key) {
  switch (st.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return st;
    case absl::StatusCode::kCancelled:
      return absl::UnavailableError(absl::StrCat("the load of ", key, " was cancelled"));
    default:
      return absl::AbortedError(absl::StrCat("loading ", key, " failed: ", st.message()));
  }
}

}  // namespace

InstanceSnapshot ModelRegistry::SnapshotLocked(const InstanceEntry& inst) const {
  InstanceSnapshot s;
  s.info = inst.info;
  s.state = inst.state;
  s.in_flight = static_cast<int>(inst.leases.size());
  s.keep_loaded = inst.keep_loaded;
  s.ttl = inst.ttl;
  s.last_used = inst.last_used;
  for (const auto& [id, h] : inst.leases) s.holders.push_back(h.holder);
  s.info.ttl = inst.ttl;
  if (inst.last_used) s.info.last_used = inst.last_used;
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

// Evicts (marks UNLOADING and returns in `evict`) or asks the flight to wait (UNAVAILABLE) until
// the flight fits the limits; OK when it fits.
absl::Status ModelRegistry::MakeRoomLocked(const std::shared_ptr<Flight>& f, int64_t bytes,
                                           std::vector<std::string>* evict) {
  int count = 0;
  int64_t used = 0;
  for (const auto& [k, m] : models_) {
    count += static_cast<int>(m->instances.size());
    used += m->info.size_bytes * static_cast<int64_t>(m->instances.size());
  }
  for (const auto& [k, other] : flights_) {
    if (other != f && other->admitted) {
      ++count;
      used += other->bytes;
    }
  }
  auto fits = [&] {
    return (options_.max_loaded_models <= 0 || count + 1 <= options_.max_loaded_models) &&
           (options_.max_loaded_bytes <= 0 || used + bytes <= options_.max_loaded_bytes);
  };
  while (!fits()) {
    ModelEntry* victim_model = nullptr;
    InstanceEntry* victim = nullptr;
    for (auto& [k, m] : models_) {
      for (auto& inst : m->instances) {
        if (inst->state != State::kReady || !inst->leases.empty() || inst->keep_loaded) continue;
        absl::Time t = inst->last_used.value_or(inst->added_at);
        if (victim == nullptr || t < victim->last_used.value_or(victim->added_at)) {
          victim = inst.get();
          victim_model = m.get();
        }
      }
    }
    if (victim == nullptr) {
      return absl::UnavailableError(
          "capacity limits reached and every loaded model is in use or pinned");
    }
    victim->state = State::kUnloading;
    evict->push_back(victim->info.identifier);
    --count;
    used -= victim_model->info.size_bytes;
  }
  return absl::OkStatus();
}

void ModelRegistry::RunFlight(std::shared_ptr<Flight> f) {
  CallContext ctx = HostContext(options_.load_timeout);
  ctx.cancel = f->cancel;
  ctx.request_id = absl::StrCat("load:", f->model_key);
  const absl::Time start = absl::Now();

  bool known;
  {
    Locked lock(this);
    known = FindModelLocked(f->model_key) != nullptr;
  }
  if (!known) {
    // Routing already re-read the host (or found the listing fresh); no second listing per name.
    std::optional<std::string> not_found;
    {
      Locked lock(this);
      ModelEntry* m = FindModelLocked(f->model_key);
      if (m == nullptr && catalogue_known_) {
        not_found = NotFoundMessageLocked(f->model_key);
      } else if (m != nullptr && !f->counted_loading) {
        ++m->loading;
        f->counted_loading = true;
      }
    }
    if (not_found) {
      FinishFlight(f, absl::NotFoundError(*not_found), absl::Now() - start, DriverKind::kAuto);
      return;
    }
  }

  // Capacity: evict idle models, or wait for one to become idle, until the load fits.
  for (;;) {
    std::vector<std::string> evict;
    absl::Status room;
    {
      Locked lock(this);
      ModelEntry* m = FindModelLocked(f->model_key);
      f->bytes = m ? m->info.size_bytes : 0;
      room = MakeRoomLocked(f, f->bytes, &evict);
      if (room.ok()) f->admitted = true;
    }
    for (const auto& id : evict) {
      (void)UnloadOne(HostContext(options_.host_call_timeout), DriverKind::kAuto, id,
                      Event::Kind::kEvicted, absl::StrCat("evicted to make room for ", f->model_key));
    }
    if (room.ok()) break;
    if (f->cancel->cancelled() || absl::Now() >= ctx.deadline) {
      FinishFlight(f, absl::ResourceExhaustedError(absl::StrCat(
                          "cannot load ", f->model_key, ": ", room.message())),
                   absl::Now() - start, DriverKind::kAuto);
      return;
    }
    if (evict.empty()) {
      Locked lock(this);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick);
    }
  }

  auto progress = [this, f](double p) {
    std::vector<std::function<void(double)>> fns;
    {
      Locked lock(this);
      if (ModelEntry* m = FindModelLocked(f->model_key)) m->progress = p;
      for (const auto& w : f->waiters) {
        if (w->request.on_load_progress) fns.push_back(w->request.on_load_progress);
      }
    }
    for (auto& fn : fns) fn(p);
    Publish(Event::Kind::kLoadProgress, f->model_key, "", State::kLoading, "", p);
    outbox_.Flush();
  };
  LoadParams params = f->params;
  DriverKind used = f->driver;
  auto result = host_->Load(ctx, f->driver, params, progress, &used);
  FinishFlight(f, std::move(result), absl::Now() - start, used);
}

void ModelRegistry::FinishFlight(const std::shared_ptr<Flight>& f,
                                 absl::StatusOr<InstanceInfo> result, absl::Duration took,
                                 DriverKind used) {
  struct Outcome {
    std::shared_ptr<Waiter> waiter;
    std::unique_ptr<Lease> lease;
    InstanceSnapshot snapshot;
  };
  std::vector<Outcome> outcomes;
  std::vector<std::shared_ptr<Waiter>> failed;
  absl::Status waiter_status;
  {
    Locked lock(this);
    f->done = true;
    auto it = flights_.find(f->key);
    if (it != flights_.end() && it->second == f) flights_.erase(it);
    ModelEntry* m = FindModelLocked(f->model_key);
    if (m == nullptr && result.ok()) {
      auto entry = std::make_unique<ModelEntry>();
      entry->info.key = f->model_key;
      entry->info.display_name = f->model_key;
      entry->info.type = result->type;
      m = entry.get();
      models_[f->model_key] = std::move(entry);
    }
    if (m != nullptr && f->counted_loading) --m->loading;
    std::vector<std::shared_ptr<Waiter>> waiters = std::move(f->waiters);
    f->waiters.clear();
    if (result.ok()) {
      InstanceEntry* inst = nullptr;
      auto existing = FindInstanceLocked(result->identifier);  // a refresh may have added it
      if (existing.second != nullptr) {
        inst = existing.second;
        inst->info = *result;
        inst->state = State::kReady;
      } else {
        auto e = std::make_unique<InstanceEntry>();
        e->info = *result;
        e->added_at = Now();
        inst = e.get();
        m->instances.push_back(std::move(e));
      }
      if (inst->info.model_key.empty()) inst->info.model_key = f->model_key;
      inst->sent = f->params;
      std::shared_ptr<const ModelPolicy> policy = PolicyFor(f->model_key);
      inst->ttl = f->ttl ? f->ttl : TtlFor(policy.get());
      inst->keep_loaded = inst->keep_loaded || f->keep_loaded || (policy && policy->keep_loaded);
      inst->external = false;
      m->failure.clear();
      m->progress = 1;
      for (auto& w : waiters) {
        if (w->finished) continue;
        w->finished = true;
        w->used = used;
        Outcome o;
        o.waiter = w;
        if (w->acquire_done) o.lease = MakeLeaseLocked(*m, *inst, *w, Now() - w->started);
        o.snapshot = SnapshotLocked(*inst);
        o.snapshot.load_duration = took;
        outcomes.push_back(std::move(o));
      }
      Event loaded;
      loaded.kind = Event::Kind::kLoaded;
      loaded.model_key = f->model_key;
      loaded.instance = inst->info.identifier;
      loaded.state = State::kReady;
      loaded.reason = absl::StrCat("loaded via ", backends::DriverKindName(used),
                                   f->requested_by.empty() ? "" : " for tenant ", f->requested_by);
      loaded.progress = 1;
      loaded.duration = took;
      loaded.tenant = f->requested_by;
      loaded.load_config = SnapshotLocked(*inst).load_config;
      outbox_.Add(std::move(loaded));
    } else {
      const bool cancelled = absl::IsCancelled(result.status());
      if (m != nullptr && !cancelled) {
        m->failure = std::string(result.status().message());
        m->failure_transient = absl::IsUnavailable(result.status()) ||
                               absl::IsDeadlineExceeded(result.status());
      }
      waiter_status = WaiterStatus(result.status(), f->model_key);
      for (auto& w : waiters) {
        if (w->finished) continue;
        w->finished = true;
        failed.push_back(w);
      }
      Publish(cancelled ? Event::Kind::kLoadCancelled : Event::Kind::kLoadFailed, f->model_key, "",
              m ? ModelStateLocked(*m) : State::kNotLoaded,
              cancelled ? "every waiter left" : std::string(result.status().message()), 0, took,
              f->requested_by);
    }
  }
  for (auto& o : outcomes) {
    CompleteWaiter(o.waiter, absl::OkStatus(), std::move(o.lease), std::move(o.snapshot));
  }
  for (auto& w : failed) CompleteWaiter(w, waiter_status, nullptr, {});
}

// ---------------------------------------------------------------- explicit load / unload

absl::StatusOr<InstanceSnapshot> ModelRegistry::Load(const CallContext& ctx, DriverKind driver,
                                                     LoadParams params, bool keep_loaded,
                                                     bool new_instance,
                                                     const std::function<void(double)>& progress,
                                                     DriverKind* used,
                                                     const std::string& requested_by) {
  if (auto st = ctx.CheckAlive(); !st.ok()) return st;
  bool known;
  bool reuse;  // the answer would be an instance already in the view
  {
    Locked lock(this);
    ModelEntry* m = FindModelLocked(params.model_key);
    auto [im, inst] = FindInstanceLocked(params.identifier.empty() ? params.model_key
                                                                   : params.identifier);
    known = m != nullptr || FindInstanceLocked(params.model_key).second != nullptr;
    reuse = !new_instance && ((inst != nullptr && inst->state == State::kReady) ||
                              (params.identifier.empty() && m != nullptr &&
                               PickReadyLocked(*m) != nullptr));
  }
  if (reuse) {
    // OK means "loaded on the host": the view may be stale (an unload in the LM Studio app, lms,
    // its TTL), so confirm with a listing (shared with concurrent re-reads) before answering it.
    if (absl::Status st = Refresh(ctx); !st.ok()) {
      if (auto alive = ctx.CheckAlive(); !alive.ok()) return alive;
      return absl::UnavailableError(absl::StrCat(
          "cannot confirm that the LM Studio host still has ", params.model_key,
          " loaded: listing its models failed: ", st.message()));
    }
  } else if (!known) {
    // Maybe downloaded since the last sync (shared with concurrent misses; not if just listed).
    (void)RefreshIfStale(ctx);
  }
  absl::Notification done;
  absl::StatusOr<InstanceSnapshot> out = absl::UnknownError("not set");
  auto waiter = std::make_shared<Waiter>();
  waiter->request.holder = ctx.request_id;
  waiter->request.tenant = requested_by;
  waiter->request.on_load_progress = progress;
  waiter->load_done = [&](absl::StatusOr<InstanceSnapshot> r) {
    out = std::move(r);
    done.Notify();
  };
  waiter->token = ctx.cancel;
  waiter->deadline = ctx.deadline;
  waiter->started = Now();
  waiter->unique_flight = new_instance || !params.identifier.empty();
  if (params.ttl) waiter->ttl_override = params.ttl;
  {
    Locked lock(this);
    if (stopping_) return absl::UnavailableError("lmgate is shutting down");
    auto [im, inst] = FindInstanceLocked(params.identifier.empty() ? params.model_key
                                                                   : params.identifier);
    if (inst != nullptr && !params.identifier.empty()) {
      if (inst->info.model_key == params.model_key && !new_instance &&
          inst->state == State::kReady) {
        const std::vector<std::string> conflicts =
            ConfigConflicts(params, SnapshotLocked(*inst).load_config);
        if (!conflicts.empty()) {
          return absl::AlreadyExistsError(absl::StrCat(
              "instance identifier \"", params.identifier, "\" is in use by an instance of ",
              inst->info.model_key, " loaded with other settings: asked ",
              absl::StrJoin(conflicts, ", "), "; unload it first or choose another identifier"));
        }
        inst->keep_loaded |= keep_loaded;
        return SnapshotLocked(*inst);
      }
      return absl::AlreadyExistsError(absl::StrCat("instance identifier \"", params.identifier,
                                                   "\" is already in use by ",
                                                   inst->info.model_key));
    }
    ModelEntry* m = FindModelLocked(params.model_key);
    if (m == nullptr && im != nullptr) m = im;  // an identifier was given as `model`
    if (m == nullptr && catalogue_known_) {
      return absl::NotFoundError(NotFoundMessageLocked(params.model_key));
    }
    if (m != nullptr && !new_instance && params.identifier.empty()) {
      // The model key is the default identifier: an instance loaded with other settings than
      // those asked is not an answer, and loading beside it needs new_instance.
      InstanceEntry* match = nullptr;
      std::string conflict;  // the first READY instance that does not match, and why
      for (auto& i : m->instances) {
        if (i->state != State::kReady) continue;
        std::vector<std::string> c = ConfigConflicts(params, SnapshotLocked(*i).load_config);
        if (c.empty()) {
          if (match == nullptr || i->leases.size() < match->leases.size()) match = i.get();
        } else if (conflict.empty()) {
          conflict = absl::StrCat(i->info.identifier, " (asked ", absl::StrJoin(c, ", "), ")");
        }
      }
      if (match != nullptr) {
        match->keep_loaded |= keep_loaded;
        if (used) *used = DriverKind::kAuto;
        return SnapshotLocked(*match);
      }
      if (!conflict.empty()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "model ", m->info.key, " is loaded with other settings than asked: ", conflict,
            "; unload it first, or set new_instance to load another instance"));
      }
    }
    const std::string key = m != nullptr ? m->info.key : params.model_key;
    if (std::shared_ptr<const ModelPolicy> policy = PolicyFor(key)) {
      MergePolicy(policy->load, &params);
      keep_loaded |= policy->keep_loaded;
    }
    params.ttl.reset();  // lmgate enforces TTLs itself; the host never unloads on its own
    JoinOrStartFlightLocked(key, std::move(params), driver, /*explicit_load=*/true, keep_loaded,
                            waiter);
  }
  std::weak_ptr<Waiter> weak = waiter;
  waiter->cancel.Register(waiter->token, [this, weak] {
    if (auto w = weak.lock()) {
      w->cancelled_inline = true;
      RemoveWaiter(w, absl::CancelledError("LoadModel was cancelled"));
    }
  });
  done.WaitForNotification();
  if (used) *used = waiter->used;
  return out;
}

absl::Status ModelRegistry::UnloadOne(const CallContext& ctx, DriverKind driver,
                                      const std::string& id, Event::Kind done_kind,
                                      const std::string& reason, DriverKind* used) {
  std::string key;
  {
    Locked lock(this);
    auto [m, inst] = FindInstanceLocked(id);
    if (inst == nullptr) return absl::OkStatus();
    key = m->info.key;
  }
  Publish(Event::Kind::kUnloadStarted, key, id, State::kUnloading, reason);
  outbox_.Flush();
  const absl::Time start = absl::Now();
  absl::Status st = host_->Unload(ctx, driver, id, used);
  Locked lock(this);
  auto [m, inst] = FindInstanceLocked(id);
  if (inst == nullptr) return st;
  if (st.ok() || absl::IsNotFound(st)) {
    auto& v = m->instances;
    // A structured binding cannot be captured before C++20 (clang refuses; gcc lets it pass).
    const auto* gone = inst;
    v.erase(std::remove_if(v.begin(), v.end(), [gone](const auto& e) { return e.get() == gone; }),
            v.end());
    Publish(done_kind, key, id, ModelStateLocked(*m), reason, 0, absl::Now() - start);
    return absl::OkStatus();
  }
  inst->state = State::kReady;  // still loaded upstream
  return st;
}

absl::StatusOr<std::vector<std::string>> ModelRegistry::Unload(const CallContext& ctx,
                                                               DriverKind driver,
                                                               const std::string& model,
                                                               bool all_instances, bool force,
                                                               const std::string& requested_by,
                                                               DriverKind* used) {
  std::vector<std::string> targets;
  std::vector<std::function<void()>> force_hooks;
  {
    Locked lock(this);
    std::vector<InstanceEntry*> found;
    if (ModelEntry* m = FindModelLocked(model)) {
      for (auto& i : m->instances) {
        if (i->state == State::kReady) found.push_back(i.get());
      }
      if (found.size() > 1 && !all_instances) {
        std::vector<std::string> ids;
        for (auto* i : found) ids.push_back(i->info.identifier);
        return absl::FailedPreconditionError(
            absl::StrCat("model ", model, " has ", found.size(), " instances (",
                         absl::StrJoin(ids, ", "), "); name one or set all_instances"));
      }
    } else if (auto [im, inst] = FindInstanceLocked(model); inst != nullptr) {
      found.push_back(inst);
    }
    if (found.empty()) {
      if (FindModelLocked(model) != nullptr) {
        return absl::NotFoundError(absl::StrCat("model ", model, " has no loaded instance"));
      }
      return absl::NotFoundError(NotFoundMessageLocked(model));
    }
    for (auto* i : found) {
      if (i->state != State::kReady) {
        return absl::FailedPreconditionError(absl::StrCat(
            "instance ", i->info.identifier, " is ", StateName(i->state), "; try again shortly"));
      }
      if (!i->leases.empty() && !force) {
        std::vector<std::string> holders;
        for (const auto& [id, h] : i->leases) holders.push_back(h.holder);
        return absl::FailedPreconditionError(absl::StrCat(
            "instance ", i->info.identifier, " is serving ", holders.size(), " request(s) (",
            absl::StrJoin(holders, ", "), "); unload when they finish, or set force"));
      }
    }
    for (auto* i : found) {
      i->state = State::kUnloading;
      targets.push_back(i->info.identifier);
      for (auto& [id, h] : i->leases) {
        if (h.on_force_unload) force_hooks.push_back(h.on_force_unload);
      }
    }
  }
  for (auto& hook : force_hooks) hook();
  const std::string reason =
      requested_by.empty() ? "UnloadModel" : absl::StrCat("UnloadModel by tenant ", requested_by);
  for (const auto& id : targets) {
    if (auto st = UnloadOne(ctx, driver, id, Event::Kind::kUnloaded, reason, used); !st.ok()) {
      return st;
    }
  }
  return targets;
}

}  // namespace lmgate::lifecycle
