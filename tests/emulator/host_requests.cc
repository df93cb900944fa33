// Host: request-level entry points (explicit loads, getOrLoad, HTTP model resolution), the idle
// TTL reaper and the counters. Lower-level lifecycle helpers are in model_host.cc.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/emulator/model_host.h"
#include "tests/emulator/model_host_internal.h"

namespace lmgate::emulator {

using nlohmann::json;

namespace {

absl::Status PathNotFound(const std::string& name, const Catalogue& catalogue) {
  const std::vector<std::string> keys = catalogue.Keys();
  json display = {{"code", "generic.pathNotFound"},
                  {"path", name},
                  {"availablePathsSample", keys},
                  {"totalModels", static_cast<int64_t>(keys.size())}};
  // [?] Real wording unknown; this matches what the SDK conformance runs expect.
  return WithPayload(HttpError(absl::NotFoundError(absl::StrCat("Cannot find model with key \"",
                                                                 name, "\"")),
                               404, "model_not_found"),
                     kPayloadDisplayData, display.dump());
}

const char* InterfaceName(Interface i) {
  switch (i) {
    case Interface::kSdk: return "sdk";
    case Interface::kRestV0: return "rest_v0";
    case Interface::kRestV1: return "rest_v1";
    case Interface::kOpenAi: return "openai";
    case Interface::kCliStatus: return "cli_status";
  }
  return "other";
}

}  // namespace

absl::StatusOr<InstanceHandle> Host::Load(const LoadRequest& req, LoadObserver* obs, Job* job) {
  const ModelSpec* spec = catalogue_.Find(req.model);
  if (spec == nullptr) return PathNotFound(req.model, catalogue_);
  if (obs != nullptr) obs->OnResolved(ModelInfoJson(*spec));
  absl::MutexLock l(&mu_);
  absl::StatusOr<InstanceHandle> inst = StartLoadLocked(*spec, req, /*jit=*/false);
  if (!inst.ok()) return inst.status();
  absl::Status s = WaitForLoadLocked(*inst, obs, job, /*abort_on_cancel=*/true);
  if (!s.ok()) return s;
  if (obs != nullptr) {
    json info = InstanceInfoLocked(**inst);
    Unlocked([&] { obs->OnLoaded(info); });
  }
  return inst;
}

absl::StatusOr<InstanceHandle> Host::GetOrLoad(const LoadRequest& req, LoadObserver* obs,
                                               Job* job) {
  absl::MutexLock l(&mu_);
  // A custom identifier of a loaded instance wins over model keys.
  for (const InstanceHandle& i : instances_) {
    if (i->identifier == req.model && i->state == Instance::State::kLoaded) {
      if (obs != nullptr) {
        json info = InstanceInfoLocked(*i);
        Unlocked([&] { obs->OnAlreadyLoaded(info); });
      }
      return i;
    }
  }
  const ModelSpec* spec = catalogue_.Find(req.model);
  if (spec == nullptr) return PathNotFound(req.model, catalogue_);
  return EnsureLoadedLocked(*spec, req, obs, job);
}

absl::StatusOr<InstanceHandle> Host::ResolveForInference(const std::string& name,
                                                         const std::string& domain,
                                                         std::optional<int64_t> ttl_ms,
                                                         LoadObserver* obs, Job* job) {
  absl::Status window = CheckJitWindow(name);
  if (!window.ok()) return window;
  absl::MutexLock l(&mu_);
  std::vector<std::string> loaded;
  for (const InstanceHandle& i : instances_) {
    if (i->state == Instance::State::kLoaded) loaded.push_back(i->identifier);
  }
  const absl::Status no_models = HttpError(
      absl::FailedPreconditionError("No models loaded. Please load a model in the developer page "
                                    "or use the 'lms load' command."),
      400, "");
  if (name.empty()) {
    // [?] Requests without `model` use the first loaded model of the right kind.
    for (const InstanceHandle& i : instances_) {
      if (i->state == Instance::State::kLoaded && i->spec->type == domain) return i;
    }
    return no_models;
  }
  if (InstanceHandle i = FindInstanceLocked(name, "", /*include_loading=*/false)) {
    if (i->spec->type != domain) {
      return HttpError(absl::InvalidArgumentError(absl::StrCat(
                           "Model \"", name, "\" is not ",
                           domain == "llm" ? "a text generation model" : "an embedding model")),
                       400, "model_not_found");
    }
    return i;
  }
  const ModelSpec* spec = catalogue_.Find(name);
  const bool jit = settings_.jit_enabled;
  if (spec == nullptr || (!jit && !loaded.empty())) {
    const std::vector<std::string> valid = jit ? catalogue_.Keys() : loaded;
    return HttpError(absl::NotFoundError(absl::StrCat(
                         "Invalid model identifier \"", name,
                         "\". Please specify a valid downloaded model (e.g., ",
                         absl::StrJoin(valid.begin(),
                                       valid.begin() + std::min<size_t>(valid.size(), 5), ", "),
                         ").")),
                     400, "model_not_found");
  }
  if (!jit) return no_models;
  if (spec->type != domain) {
    return HttpError(absl::InvalidArgumentError(absl::StrCat(
                         "Model \"", name, "\" is not ",
                         domain == "llm" ? "a text generation model" : "an embedding model")),
                     400, "model_not_found");
  }
  LoadRequest req;
  req.model = name;
  req.ttl_ms = ttl_ms;
  return EnsureLoadedLocked(*spec, req, obs, job);
}

void Host::RunReaper() {
  absl::MutexLock l(&mu_);
  while (!shutdown_) {
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    std::vector<InstanceHandle> expired;
    for (const InstanceHandle& i : instances_) {
      if (i->state != Instance::State::kLoaded || !i->ttl_ms.has_value() || i->busy()) continue;
      const absl::Time at = i->idle_since + absl::Milliseconds(*i->ttl_ms);
      if (at <= now) {
        expired.push_back(i);
      } else {
        next = std::min(next, at);
      }
    }
    for (const InstanceHandle& i : expired) {
      ++counters_.unloads;
      ++counters_.ttl_unloads;
      MarkJitWindowLocked(*i->spec);
      RemoveInstanceLocked(i);
    }
    const uint64_t seen = version_;
    auto changed = [&] { return shutdown_ || version_ != seen; };
    mu_.AwaitWithDeadline(absl::Condition(&changed), next);
  }
}

void Host::CountRequest(Interface iface) {
  absl::MutexLock l(&mu_);
  ++counters_.requests[InterfaceName(iface)];
}

void Host::OnWsOpened() {
  absl::MutexLock l(&mu_);
  ++ws_open_;
  ++counters_.ws_connections_total;
}

void Host::OnWsClosed() {
  absl::MutexLock l(&mu_);
  --ws_open_;
}

json Host::Stats() const {
  absl::MutexLock l(&mu_);
  const Counters& c = counters_;
  json requests = json::object();
  for (Interface i : {Interface::kSdk, Interface::kRestV0, Interface::kRestV1, Interface::kOpenAi,
                      Interface::kCliStatus}) {
    auto it = c.requests.find(InterfaceName(i));
    requests[InterfaceName(i)] = it == c.requests.end() ? 0 : it->second;
  }
  int64_t queued = 0;
  json instances = json::array();
  for (const InstanceHandle& i : instances_) {
    queued += static_cast<int64_t>(i->queue.size());
    instances.push_back(
        {{"identifier", i->identifier},
         {"modelKey", i->spec->model_key},
         {"type", i->spec->type},
         {"instanceReference", i->reference},
         {"state", i->state == Instance::State::kLoaded ? "loaded" : "loading"},
         {"jit", i->jit},
         {"ttlMs", i->ttl_ms.has_value() ? json(*i->ttl_ms) : json(nullptr)},
         {"lastUsedTime", i->last_used_ms.has_value() ? json(*i->last_used_ms) : json(nullptr)},
         {"contextLength", i->context_length},
         {"parallel", i->parallel},
         {"active", i->active},
         {"queued", static_cast<int64_t>(i->queue.size())}});
  }
  return {{"loads_started", c.loads_started},
          {"loads_finished", c.loads_finished},
          {"loads_cancelled", c.loads_cancelled},
          {"loads_failed", c.loads_failed},
          {"unloads", c.unloads},
          {"ttl_unloads", c.ttl_unloads},
          {"predictions_started", c.predictions_started},
          {"predictions_finished", c.predictions_finished},
          {"predictions_cancelled", c.predictions_cancelled},
          {"predictions_active", predictions_active_},
          {"predictions_queued", queued},
          {"embeddings", c.embeddings},
          {"ws_connections_open", ws_open_},
          {"ws_connections_total", c.ws_connections_total},
          {"http_errors_injected", c.http_errors_injected},
          {"requests_by_interface", requests},
          {"loaded_instances", instances}};
}

void Host::ResetStats() {
  absl::MutexLock l(&mu_);
  counters_ = Counters();
}

}  // namespace lmgate::emulator
