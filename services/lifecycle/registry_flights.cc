// ModelRegistry: flights, the single-flight upstream loads shared by their waiters, on threads
// the registry owns.
#include "services/lifecycle/registry.h"

#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/lifecycle/registry_internal.h"

namespace lmgate::lifecycle {

using backends::InstanceInfo;
using backends::LoadParams;

namespace {

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
    // A flight kept for other gateways' waiters has one of this gateway's again.
    if (it->second->waiters.size() == 1) (void)it->second->link->LocalWaiters(1);
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
  // A flight of its own (new instance, custom identifier) is never shared with other gateways.
  if (waiter->unique_flight) {
    f->link = std::make_unique<LocalFlightLink>();
  } else {
    f->link = load_flights_->Open(fkey, [this, weak = std::weak_ptr<Flight>(f)] {
      AbandonFlight(weak);
    });
  }
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

  // Another gateway may run this load (flights.h): follow it, or lead.
  auto follow_progress = [this, f](double p) {
    std::vector<std::function<void(double)>> fns;
    {
      Locked lock(this);
      if (ModelEntry* m = FindModelLocked(f->model_key)) m->progress = p;
      for (const auto& w : f->waiters) {
        if (w->request.on_load_progress) fns.push_back(w->request.on_load_progress);
      }
    }
    for (auto& fn : fns) fn(p);
  };
  absl::StatusOr<InstanceInfo> followed = absl::UnknownError("no result");
  if (f->link->AwaitTurn(*f->cancel, follow_progress, &followed) == FlightLink::Turn::kFollowed) {
    {
      Locked lock(this);
      f->followed = true;
    }
    if (followed.ok()) {
      // Adopt the leader's instance; a re-read of the host fills in what this gateway's
      // drivers see of it (the payload is the fallback when the listing misses it).
      (void)Refresh(HostContext(options_.host_call_timeout));
      Locked lock(this);
      if (InstanceEntry* inst = FindInstanceLocked(followed->identifier).second) {
        followed = inst->info;
      }
    }
    FinishFlight(f, std::move(followed), absl::Now() - start, f->driver);
    return;
  }
  if (f->link->shared_lead()) {
    if (std::optional<InstanceInfo> ready = ReadyAfterRefresh(f)) {
      FinishFlight(f, *std::move(ready), absl::Now() - start, f->driver);
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
    f->link->Progress(p);
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
    absl::Status status;
    std::unique_ptr<Lease> lease;
    InstanceSnapshot snapshot;
  };
  std::vector<Outcome> outcomes;
  std::vector<std::shared_ptr<Waiter>> failed;
  absl::Status waiter_status;
  f->link->Finish(result);  // outside mu_: a shared link publishes it to the other gateways
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
        if (w->acquire_done) {
          o.lease = MakeLeaseLocked(*m, *inst, *w, Now() - w->started);
          if (o.lease == nullptr) {
            o.status = absl::UnavailableError(absl::StrCat(
                "instance ", inst->info.identifier, " is being unloaded; try again"));
          }
        }
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
      if (!f->followed) outbox_.Add(std::move(loaded));  // the leader's LOADED is shared
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
      if (!f->followed) {
        Publish(cancelled ? Event::Kind::kLoadCancelled : Event::Kind::kLoadFailed, f->model_key,
                "", m ? ModelStateLocked(*m) : State::kNotLoaded,
                cancelled ? "every waiter left" : std::string(result.status().message()), 0, took,
                f->requested_by);
      }
    }
  }
  // Nobody reaches the link once `done` is set under mu_; it may block (shared store).
  f->link.reset();
  for (auto& o : outcomes) {
    CompleteWaiter(o.waiter, o.status, std::move(o.lease), std::move(o.snapshot));
  }
  for (auto& w : failed) CompleteWaiter(w, waiter_status, nullptr, {});
}

void ModelRegistry::AbandonFlight(const std::weak_ptr<Flight>& weak) {
  std::shared_ptr<backends::CancelToken> cancel;
  {
    Locked lock(this);
    std::shared_ptr<Flight> f = weak.lock();
    if (f == nullptr || f->done || !f->waiters.empty()) return;
    cancel = f->cancel;
    auto it = flights_.find(f->key);
    if (it != flights_.end() && it->second == f) flights_.erase(it);
  }
  cancel->Cancel();
}

std::optional<InstanceInfo> ModelRegistry::ReadyAfterRefresh(const std::shared_ptr<Flight>& f) {
  (void)Refresh(HostContext(options_.host_call_timeout));
  Locked lock(this);
  ModelEntry* m = FindModelLocked(f->model_key);
  if (m == nullptr) return std::nullopt;
  for (const auto& inst : m->instances) {
    if (inst->state == State::kReady) return inst->info;
  }
  return std::nullopt;
}

}  // namespace lmgate::lifecycle
