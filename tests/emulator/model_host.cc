#include "tests/emulator/model_host.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/emulator/model_host_internal.h"

namespace lmgate::emulator {

using nlohmann::json;

namespace {

bool DomainMatches(const ModelSpec& spec, const std::string& domain) {
  return domain.empty() || spec.type == domain;
}

bool SpecMatches(const ModelSpec& spec, const std::string& name) {
  return absl::EqualsIgnoreCase(spec.model_key, name) ||
         absl::EqualsIgnoreCase(spec.VariantName(), name) || spec.path == name;
}

std::string NewReference(uint64_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint64_t h = Fnv1a64(absl::StrCat(n, ":", absl::ToUnixNanos(absl::Now())));
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += kAlphabet[h & 63];
    h = (h >> 6) | (Fnv1a64(out, h) << 58);
  }
  return out;
}

}  // namespace

absl::Status WithPayload(absl::Status status, const char* key, const std::string& value) {
  status.SetPayload(key, absl::Cord(value));
  return status;
}

std::optional<std::string> GetPayload(const absl::Status& status, const char* key) {
  auto p = status.GetPayload(key);
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

json PredictionStats::ToSdkJson() const {
  json j = {{"stopReason", stop_reason},
            {"tokensPerSecond", tokens_per_second},
            {"numGpuLayers", -1},
            {"timeToFirstTokenSec", time_to_first_token_sec},
            {"totalTimeSec", total_time_sec},
            {"promptTokensCount", prompt_tokens},
            {"predictedTokensCount", predicted_tokens},
            {"totalTokensCount", prompt_tokens + predicted_tokens}};
  if (!stop_string.empty()) j["stopString"] = stop_string;
  return j;
}

Host::Host(Catalogue catalogue, Settings settings, Faults faults)
    : catalogue_(std::move(catalogue)), settings_(settings), faults_(faults) {
  reaper_ = std::thread([this] { RunReaper(); });
}

Host::~Host() { Shutdown(); }

Settings Host::settings() const {
  absl::MutexLock l(&mu_);
  return settings_;
}

void Host::SetSettings(const Settings& s) {
  absl::MutexLock l(&mu_);
  settings_ = s;
  ++version_;
}

Faults Host::faults() const {
  absl::MutexLock l(&mu_);
  return faults_;
}

void Host::SetFaults(const Faults& f) {
  absl::MutexLock l(&mu_);
  faults_ = f;
}

absl::Status Host::ApplySettings(const json& update) {
  absl::MutexLock l(&mu_);
  ++version_;
  return settings_.Apply(update);
}

absl::Status Host::ApplyFaults(const json& update) {
  absl::MutexLock l(&mu_);
  return faults_.Apply(update);
}

std::shared_ptr<Job> Host::NewJob() { return std::make_shared<Job>(); }

void Host::Cancel(Job& job) {
  // Taking mu_ makes every waiter re-evaluate its condition on unlock.
  absl::MutexLock l(&mu_);
  job.cancelled_.store(true, std::memory_order_release);
}

bool Host::Spawn(std::function<void()> fn) {
  std::vector<std::thread> done;
  {
    absl::MutexLock l(&threads_mu_);
    if (threads_closed_) return false;
    for (uint64_t id : finished_threads_) {
      auto it = threads_.find(id);
      if (it != threads_.end()) {
        done.push_back(std::move(it->second));
        threads_.erase(it);
      }
    }
    finished_threads_.clear();
    const uint64_t id = next_thread_id_++;
    threads_[id] = std::thread([this, id, fn = std::move(fn)]() mutable {
      {
        // The captures (sessions, handles) die here, before the thread reports itself finished,
        // so joining a finished thread never waits on a destructor that may take locks.
        std::function<void()> work = std::move(fn);
        work();
      }
      absl::MutexLock l(&threads_mu_);
      finished_threads_.push_back(id);
    });
  }
  for (std::thread& t : done) t.join();  // they have returned from fn already
  return true;
}

void Host::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    shutdown_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
  // Workers may spawn loaders while we join; loop until nothing is left.
  while (true) {
    std::map<uint64_t, std::thread> threads;
    {
      absl::MutexLock l(&threads_mu_);
      threads.swap(threads_);
      if (threads.empty()) {
        threads_closed_ = true;
        return;
      }
    }
    for (auto& [id, t] : threads) t.join();
  }
}

bool Host::Waiting(const Job* job) const { return !shutdown_ && (job == nullptr || !job->cancelled()); }

// ---------------------------------------------------------------- queries

InstanceHandle Host::FindInstanceLocked(const std::string& name, const std::string& domain,
                                        bool include_loading) const {
  auto usable = [&](const InstanceHandle& i) {
    return DomainMatches(*i->spec, domain) &&
           (i->state == Instance::State::kLoaded ||
            (include_loading && i->state == Instance::State::kLoading));
  };
  for (const InstanceHandle& i : instances_) {
    if (usable(i) && i->identifier == name) return i;
  }
  for (Instance::State want : {Instance::State::kLoaded, Instance::State::kLoading}) {
    for (const InstanceHandle& i : instances_) {
      if (usable(i) && i->state == want && SpecMatches(*i->spec, name)) return i;
    }
  }
  return nullptr;
}

json Host::InstanceInfoLocked(const Instance& i) const {
  json j = ModelInfoJson(*i.spec);
  j["identifier"] = i.identifier;
  j["instanceReference"] = i.reference;
  j["ttlMs"] = i.ttl_ms.has_value() ? json(*i.ttl_ms) : json(nullptr);
  j["lastUsedTime"] = i.last_used_ms.has_value() ? json(*i.last_used_ms) : json(nullptr);
  j["contextLength"] = i.context_length;
  return j;
}

json Host::ListLoaded(const std::string& domain) const {
  absl::MutexLock l(&mu_);
  json out = json::array();
  for (const InstanceHandle& i : instances_) {
    if (i->state == Instance::State::kLoaded && DomainMatches(*i->spec, domain)) {
      out.push_back(InstanceInfoLocked(*i));
    }
  }
  return out;
}

absl::StatusOr<InstanceHandle> Host::FindBySpecifier(const json& specifier,
                                                     const std::string& domain) const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> loaded;
  for (const InstanceHandle& i : instances_) {
    if (i->state == Instance::State::kLoaded && DomainMatches(*i->spec, domain)) {
      loaded.push_back(i->identifier);
    }
  }
  const std::string type = specifier.is_object() ? specifier.value("type", "") : "";
  if (type == "instanceReference") {
    const std::string ref = specifier.value("instanceReference", "");
    for (const InstanceHandle& i : instances_) {
      if (i->reference == ref && i->state == Instance::State::kLoaded) return i;
    }
    return WithPayload(absl::NotFoundError("The specific model instance has been unloaded."),
                       kPayloadDisplayData, json{{"code", "generic.specificModelUnloaded"}}.dump());
  }
  if (type != "query") return absl::InvalidArgumentError("Invalid model specifier");
  const json query = specifier.value("query", json::object());
  const std::string identifier = query.value("identifier", "");
  const std::string path = query.value("path", "");
  for (const InstanceHandle& i : instances_) {
    if (i->state != Instance::State::kLoaded || !DomainMatches(*i->spec, domain)) continue;
    if (!identifier.empty() && i->identifier != identifier && !SpecMatches(*i->spec, identifier)) {
      continue;
    }
    if (!path.empty() && i->spec->path != path && !SpecMatches(*i->spec, path)) continue;
    if (query.contains("vision") && query["vision"].is_boolean() &&
        query["vision"].get<bool>() != i->spec->vision) {
      continue;
    }
    return i;
  }
  json display = {{"code", "generic.noModelMatchingQuery"},
                  {"query", query},
                  {"loadedModelsSample", loaded},
                  {"totalLoadedModels", static_cast<int64_t>(loaded.size())}};
  std::string title = loaded.empty()
                          ? "No loaded model satisfies all requirements specified in the query."
                          : absl::StrCat("No loaded model satisfies all requirements specified in "
                                         "the query. Loaded models: ",
                                         absl::StrJoin(loaded, ", "));
  return WithPayload(absl::NotFoundError(title), kPayloadDisplayData, display.dump());
}

absl::StatusOr<InstanceHandle> Host::FindLoaded(const std::string& name,
                                                const std::string& domain) const {
  absl::MutexLock l(&mu_);
  InstanceHandle i = FindInstanceLocked(name, domain, /*include_loading=*/false);
  if (i == nullptr) return absl::NotFoundError(absl::StrCat("No loaded model \"", name, "\""));
  return i;
}

json Host::InstanceInfo(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  return InstanceInfoLocked(*i);
}

const ModelSpec& Host::Spec(const InstanceHandle& i) const { return *i->spec; }

std::string Host::Identifier(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  return i->identifier;
}

int64_t Host::ContextLength(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  return i->context_length;
}

int Host::Parallel(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  return i->parallel;
}

std::optional<int> Host::ReportedParallel(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  if (!i->load_config.Has("llm.load.numParallelSessions")) return std::nullopt;
  return i->parallel;
}

json Host::LoadConfigJson(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  return i->load_config.ToJson();
}

json Host::ProcessingState(const InstanceHandle& i) const {
  absl::MutexLock l(&mu_);
  const char* status = i->prompt_phase > 0 ? "processingPrompt"
                       : i->active > 0     ? "generating"
                                           : "idle";
  return {{"status", status}, {"queued", static_cast<int64_t>(i->queue.size())}};
}

std::vector<std::pair<const ModelSpec*, std::vector<InstanceHandle>>> Host::Models() const {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<const ModelSpec*, std::vector<InstanceHandle>>> out;
  for (const ModelSpec& m : catalogue_.models()) {
    std::vector<InstanceHandle> loaded;
    for (const InstanceHandle& i : instances_) {
      if (i->spec == &m && i->state == Instance::State::kLoaded) loaded.push_back(i);
    }
    out.emplace_back(&m, std::move(loaded));
  }
  return out;
}

std::optional<int> Host::TakeHttpErrorFault() {
  absl::MutexLock l(&mu_);
  if (faults_.http_error_count <= 0) return std::nullopt;
  --faults_.http_error_count;
  ++counters_.http_errors_injected;
  return faults_.http_error_status;
}

absl::Status Host::CheckJitWindow(const std::string& name) const {
  absl::MutexLock l(&mu_);
  if (faults_.jit_window_ms <= 0 || name.empty()) return absl::OkStatus();
  const ModelSpec* spec = catalogue_.Find(name);
  if (spec == nullptr) {
    for (const InstanceHandle& i : instances_) {
      if (i->identifier == name) spec = i->spec;
    }
  }
  if (spec == nullptr) return absl::OkStatus();
  auto it = jit_window_until_.find(spec->model_key);
  if (it == jit_window_until_.end() || absl::Now() >= it->second) return absl::OkStatus();
  // [?] The body LM Studio sends in this window is not captured; users saw a 404 (seed 003).
  return HttpError(absl::UnavailableError(absl::StrCat(
                       "Model \"", name, "\" is not available: it is being loaded or unloaded.")),
                   faults_.jit_window_status, "model_not_found");
}

// ---------------------------------------------------------------- lifecycle

void Host::MarkJitWindowLocked(const ModelSpec& spec) {
  if (faults_.jit_window_ms > 0) {
    jit_window_until_[spec.model_key] = absl::Now() + absl::Milliseconds(faults_.jit_window_ms);
  }
}

void Host::RemoveInstanceLocked(const InstanceHandle& inst) {
  inst->state = inst->state == Instance::State::kFailed ? Instance::State::kFailed
                                                        : Instance::State::kGone;
  instances_.erase(std::remove(instances_.begin(), instances_.end(), inst), instances_.end());
  ++version_;
}

absl::Status Host::Unload(const std::string& identifier) {
  absl::MutexLock l(&mu_);
  InstanceHandle target;
  for (const InstanceHandle& i : instances_) {
    if (i->identifier == identifier) target = i;
  }
  if (target == nullptr) target = FindInstanceLocked(identifier, "", /*include_loading=*/true);
  if (target == nullptr) {
    std::vector<std::string> loaded;
    for (const InstanceHandle& i : instances_) loaded.push_back(i->identifier);
    json display = {{"code", "generic.identifierNotFound"},
                    {"identifier", identifier},
                    {"loadedModelsSample", loaded},
                    {"totalLoadedModels", static_cast<int64_t>(loaded.size())}};
    return WithPayload(
        HttpError(absl::NotFoundError(absl::StrCat("No model found with identifier \"",
                                                   identifier, "\"")),
                  404, "model_not_found"),
        kPayloadDisplayData, display.dump());
  }
  if (target->state == Instance::State::kLoading) {
    target->failure = "Model loading was cancelled (the model was unloaded)";
    ++counters_.loads_cancelled;
  } else {
    ++counters_.unloads;
  }
  MarkJitWindowLocked(*target->spec);
  RemoveInstanceLocked(target);
  return absl::OkStatus();
}

std::string Host::AllocateIdentifierLocked(const ModelSpec& spec) const {
  auto used = [&](const std::string& id) {
    for (const InstanceHandle& i : instances_) {
      if (i->identifier == id) return true;
    }
    return false;
  };
  if (!used(spec.model_key)) return spec.model_key;
  for (int n = 2;; ++n) {
    std::string id = absl::StrCat(spec.model_key, ":", n);
    if (!used(id)) return id;
  }
}

absl::StatusOr<InstanceHandle> Host::StartLoadLocked(const ModelSpec& spec,
                                                     const LoadRequest& req, bool jit) {
  if (shutdown_) return absl::UnavailableError("The emulator is shutting down");
  std::string identifier;
  if (req.identifier.has_value() && !req.identifier->empty()) {
    for (const InstanceHandle& i : instances_) {
      if (i->identifier == *req.identifier) {
        // [?] LM Studio's wording for a duplicate identifier is not captured.
        return HttpError(absl::AlreadyExistsError(absl::StrCat(
                             "A model with identifier \"", *req.identifier,
                             "\" is already loaded. Use a different identifier.")),
                         400, "invalid_request");
      }
    }
    identifier = *req.identifier;
  } else {
    identifier = AllocateIdentifierLocked(spec);
  }
  auto inst = std::make_shared<Instance>();
  inst->spec = &spec;
  inst->identifier = identifier;
  inst->reference = NewReference(next_ticket_++);
  inst->ttl_ms = req.ttl_ms;
  inst->jit = jit;
  const std::string prefix = spec.is_llm() ? "llm.load." : "embedding.load.";
  inst->load_config = req.config;
  // [?] LM Studio rejects or clamps an over-long context; the emulator clamps to the maximum.
  int64_t ctx = static_cast<int64_t>(
      req.config.Number(prefix + "contextLength").value_or(spec.default_context_length));
  inst->context_length = std::clamp<int64_t>(ctx, 16, spec.max_context_length);
  inst->load_config.Set(prefix + "contextLength", inst->context_length);
  inst->parallel = settings_.default_parallel;
  if (spec.is_llm()) {
    inst->parallel = std::max(1, static_cast<int>(req.config.Number("llm.load.numParallelSessions")
                                                      .value_or(settings_.default_parallel)));
    if (!settings_.omit_default_parallel || req.config.Has("llm.load.numParallelSessions")) {
      inst->load_config.Set("llm.load.numParallelSessions", inst->parallel);
    }
    if (!inst->load_config.Has("llm.load.llama.acceleration.offloadRatio")) {
      inst->load_config.Set("llm.load.llama.acceleration.offloadRatio", 1);
    }
  }
  instances_.push_back(inst);
  ++counters_.loads_started;
  ++version_;
  MarkJitWindowLocked(spec);
  const bool fail = faults_.fail_next_loads > 0;
  if (fail) --faults_.fail_next_loads;
  const double ms = static_cast<double>(spec.size_bytes) / 1e9 * settings_.load_ms_per_gb *
                    faults_.load_time_multiplier;
  const absl::Duration duration = absl::Microseconds(static_cast<int64_t>(ms * 1000));
  const int steps = std::max(1, settings_.load_progress_steps);
  inst->progress_steps = steps;
  if (!Spawn([this, inst, duration, steps, fail] { RunLoader(inst, duration, steps, fail); })) {
    RemoveInstanceLocked(inst);
    return absl::UnavailableError("The emulator is shutting down");
  }
  return inst;
}

void Host::RunLoader(InstanceHandle inst, absl::Duration duration, int steps, bool fail) {
  const absl::Time start = absl::Now();
  absl::MutexLock l(&mu_);
  for (int step = 1; step <= steps; ++step) {
    auto stop = [&] { return shutdown_ || inst->state != Instance::State::kLoading; };
    mu_.AwaitWithDeadline(absl::Condition(&stop), start + duration * step / steps);
    if (stop()) return;  // cancelled or unloaded: whoever did it counted it
    if (fail && step * 2 >= steps) {
      inst->state = Instance::State::kFailed;
      inst->failure = absl::StrCat("Failed to load model \"", inst->spec->model_key,
                                   "\": injected load failure");
      ++counters_.loads_failed;
      RemoveInstanceLocked(inst);
      return;
    }
    inst->progress_step = step;
  }
  inst->state = Instance::State::kLoaded;
  inst->idle_since = absl::Now();
  ++counters_.loads_finished;
  ++version_;
}

absl::Status Host::WaitForLoadLocked(const InstanceHandle& inst, LoadObserver* obs, Job* job,
                                     bool abort_on_cancel) {
  // Every step is reported once, in order, even when the loader ran ahead of this waiter.
  int reported = 0;
  auto report_until = [&](int step) {
    while (reported < step) {
      ++reported;
      const double p = static_cast<double>(reported) / inst->progress_steps;
      if (obs != nullptr) Unlocked([&] { obs->OnProgress(p); });
    }
  };
  while (true) {
    auto ready = [&] {
      return !Waiting(job) || inst->state != Instance::State::kLoading ||
             inst->progress_step != reported;
    };
    mu_.Await(absl::Condition(&ready));
    if (inst->state == Instance::State::kLoaded) {
      report_until(inst->progress_steps);
      if (inst->state == Instance::State::kLoaded) return absl::OkStatus();
      continue;
    }
    if (inst->state == Instance::State::kFailed) {
      return HttpError(absl::InternalError(inst->failure), 500, "internal_error");
    }
    if (inst->state == Instance::State::kGone) {
      return absl::CancelledError(inst->failure.empty() ? "Model loading was cancelled"
                                                        : inst->failure);
    }
    if (!Waiting(job)) {
      if (abort_on_cancel) {
        inst->failure = "Model loading was cancelled";
        ++counters_.loads_cancelled;
        RemoveInstanceLocked(inst);
      }
      return absl::CancelledError("Model loading was cancelled");
    }
    // The loader sets the last step and kLoaded under one lock hold, so this is below the last.
    report_until(inst->progress_step);
  }
}

void Host::EvictJitLocked(LoadObserver* obs) {
  std::vector<InstanceHandle> victims;
  for (const InstanceHandle& i : instances_) {
    if (i->jit) victims.push_back(i);
  }
  for (const InstanceHandle& v : victims) {
    if (v->state == Instance::State::kGone) continue;
    if (obs != nullptr) {
      json info = InstanceInfoLocked(*v);
      Unlocked([&] { obs->OnUnloadingOther(info); });
    }
    if (v->state == Instance::State::kLoading) {
      v->failure = "Model loading was cancelled (auto-evicted by another JIT load)";
      ++counters_.loads_cancelled;
    } else if (v->state == Instance::State::kLoaded) {
      ++counters_.unloads;
    } else {
      continue;
    }
    MarkJitWindowLocked(*v->spec);
    RemoveInstanceLocked(v);
  }
}

absl::StatusOr<InstanceHandle> Host::EnsureLoadedLocked(const ModelSpec& spec,
                                                        const LoadRequest& req,
                                                        LoadObserver* obs, Job* job) {
  while (true) {
    if (!Waiting(job)) return absl::CancelledError("Request cancelled");
    InstanceHandle inst = FindInstanceLocked(req.model, spec.type, /*include_loading=*/true);
    if (inst != nullptr && inst->state == Instance::State::kLoaded) {
      if (obs != nullptr) {
        json info = InstanceInfoLocked(*inst);
        Unlocked([&] { obs->OnAlreadyLoaded(info); });
      }
      if (inst->state == Instance::State::kLoaded) return inst;
      continue;
    }
    if (inst == nullptr) {
      if (settings_.auto_evict) EvictJitLocked(obs);
      LoadRequest jit = req;
      jit.identifier.reset();
      if (!jit.ttl_ms.has_value()) jit.ttl_ms = settings_.jit_default_ttl_ms;
      absl::StatusOr<InstanceHandle> started = StartLoadLocked(spec, jit, /*jit=*/true);
      if (!started.ok()) return started.status();
      inst = *started;
    }
    if (obs != nullptr) {
      std::string id = inst->identifier;
      json info = ModelInfoJson(spec);
      Unlocked([&] { obs->OnStartLoading(id, info); });
    }
    absl::Status s = WaitForLoadLocked(inst, obs, job, /*abort_on_cancel=*/false);
    if (!s.ok()) return s;
    if (obs != nullptr) {
      json info = InstanceInfoLocked(*inst);
      Unlocked([&] { obs->OnLoaded(info); });
    }
    return inst;
  }
}

}  // namespace lmgate::emulator
