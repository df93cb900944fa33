// ModelRegistry: explicit LoadModel / UnloadModel, and the one unload path (UnloadOne) that
// expiry and eviction use too.
#include "services/lifecycle/registry.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

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

}  // namespace

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
          if (match == nullptr || leases_->Count(KeyOf(*i)) < leases_->Count(KeyOf(*match))) {
            match = i.get();
          }
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
    if (inst == nullptr) {
      leases_->FinishUnload(KeyOf(id), /*unloaded=*/true);
      return absl::OkStatus();
    }
    key = m->info.key;
  }
  Publish(Event::Kind::kUnloadStarted, key, id, State::kUnloading, reason);
  outbox_.Flush();
  const absl::Time start = absl::Now();
  absl::Status st = host_->Unload(ctx, driver, id, used);
  Locked lock(this);
  auto [m, inst] = FindInstanceLocked(id);
  if (inst == nullptr) {
    leases_->FinishUnload(KeyOf(id), /*unloaded=*/true);
    return st;
  }
  if (st.ok() || absl::IsNotFound(st)) {
    leases_->FinishUnload(KeyOf(id), /*unloaded=*/true);
    auto& v = m->instances;
    // A structured binding cannot be captured before C++20 (clang refuses; gcc lets it pass).
    const auto* gone = inst;
    v.erase(std::remove_if(v.begin(), v.end(), [gone](const auto& e) { return e.get() == gone; }),
            v.end());
    Publish(done_kind, key, id, ModelStateLocked(*m), reason, 0, absl::Now() - start);
    return absl::OkStatus();
  }
  inst->state = State::kReady;  // still loaded upstream
  leases_->FinishUnload(KeyOf(id), /*unloaded=*/false);
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
      if (std::vector<std::string> holders = leases_->Holders(KeyOf(*i));
          !holders.empty() && !force) {
        return absl::FailedPreconditionError(absl::StrCat(
            "instance ", i->info.identifier, " is serving ", holders.size(), " request(s) (",
            absl::StrJoin(holders, ", "), "); unload when they finish, or set force"));
      }
    }
    // Reserve every target before unloading any (a shared table may still refuse one).
    std::vector<InstanceEntry*> reserved;
    for (auto* i : found) {
      UnloadReservation r =
          leases_->ReserveUnload(KeyOf(*i), UnloadReason::kRequested, force, absl::ZeroDuration(),
                                 Now());
      if (!r.granted) {
        for (auto* done : reserved) leases_->FinishUnload(KeyOf(*done), /*unloaded=*/false);
        if (!r.why.empty()) return absl::UnavailableError(r.why);
        return absl::FailedPreconditionError(absl::StrCat(
            "instance ", i->info.identifier, " is being unloaded or serving ", r.holders.size(),
            " request(s) (", absl::StrJoin(r.holders, ", "), "); try again shortly"));
      }
      reserved.push_back(i);
      for (auto& hook : r.force_hooks) force_hooks.push_back(std::move(hook));
    }
    for (auto* i : found) {
      i->state = State::kUnloading;
      targets.push_back(i->info.identifier);
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
