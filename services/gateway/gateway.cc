#include "services/gateway/gateway.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace lmgate::gateway {
namespace {

using backends::Driver;
using backends::GenerateEvent;
using backends::GenerateResult;
using backends::Operation;

// Runs `fn` on each candidate until one does not answer UNAVAILABLE (fallback along the order).
template <typename Fn>
auto WithFallback(const std::vector<Driver*>& candidates, Fn fn) -> decltype(fn(nullptr)) {
  decltype(fn(nullptr)) last = absl::UnavailableError("no driver");
  for (Driver* d : candidates) {
    last = fn(d);
    if (!absl::IsUnavailable(last.status())) return last;
  }
  return last;
}

// One Generate() call across fallback attempts. Owns the current driver handle.
class GenerateRun : public backends::GenerateObserver,
                    public std::enable_shared_from_this<GenerateRun> {
 public:
  GenerateRun(CallContext ctx, std::vector<Driver*> candidates, backends::GenerateRequest request,
              std::shared_ptr<GenerateSink> sink, absl::Time start)
      : ctx_(std::move(ctx)),
        candidates_(std::move(candidates)),
        request_(std::move(request)),
        sink_(std::move(sink)),
        start_(start) {}

  void StartNext() {
    Driver* d;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        d = nullptr;
      } else {
        d = candidates_[attempt_];
      }
    }
    if (d == nullptr) {
      sink_->OnComplete(absl::CancelledError("the call was cancelled"));
      return;
    }
    sink_->OnDriver(d->kind());
    std::shared_ptr<backends::GenerateHandle> handle = d->Generate(ctx_, request_, shared_from_this());
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
      handle_ = handle;
    }
    if (cancelled) handle->Cancel();
  }

  // Never calls into the driver with mu_ held: a driver may complete synchronously.
  void Cancel() {
    std::shared_ptr<backends::GenerateHandle> handle;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      handle = handle_;
    }
    if (handle) handle->Cancel();
  }

  void OnEvent(GenerateEvent event) override {
    streamed_ = true;
    sink_->OnEvent(std::move(event));
  }

  void OnComplete(absl::StatusOr<GenerateResult> result) override {
    if (!result.ok() && absl::IsUnavailable(result.status()) && !streamed_) {
      bool retry;
      {
        absl::MutexLock lock(&mu_);
        retry = !cancelled_ && attempt_ + 1 < candidates_.size();
        if (retry) ++attempt_;
      }
      if (retry) {
        StartNext();
        return;
      }
    }
    if (!result.ok()) {
      sink_->OnComplete(result.status());
      return;
    }
    GenerateOutcome out;
    out.result = *std::move(result);
    {
      absl::MutexLock lock(&mu_);
      out.driver = candidates_[attempt_]->kind();
    }
    out.instance = request_.model;
    out.total_time = absl::Now() - start_;
    sink_->OnComplete(std::move(out));
  }

 private:
  const CallContext ctx_;
  const std::vector<Driver*> candidates_;
  const backends::GenerateRequest request_;
  const std::shared_ptr<GenerateSink> sink_;
  const absl::Time start_;
  bool streamed_ = false;  // driver thread only
  absl::Mutex mu_;
  size_t attempt_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<backends::GenerateHandle> handle_ ABSL_GUARDED_BY(mu_);
};

class RunControl : public GenerateControl {
 public:
  explicit RunControl(std::shared_ptr<GenerateRun> run) : run_(std::move(run)) {}
  void Cancel() override {
    if (run_) run_->Cancel();
  }

 private:
  std::shared_ptr<GenerateRun> run_;
};

}  // namespace

ModelsView BuildModelsView(const backends::HostModels& host) {
  ModelsView view;
  std::map<std::string, size_t> index;
  for (const auto& m : host.downloaded) {
    index[m.key] = view.models.size();
    view.models.push_back({m, {}, false});
  }
  for (const auto& inst : host.loaded) {
    auto it = index.find(inst.model_key);
    if (it == index.end()) {
      // Loaded but not in the downloaded list (the driver could not list downloads).
      ModelView mv;
      mv.info.key = inst.model_key;
      mv.info.display_name = inst.model_key;
      mv.info.type = inst.type;
      it = index.emplace(inst.model_key, view.models.size()).first;
      view.models.push_back(std::move(mv));
    }
    view.models[it->second].instances.push_back(inst);
  }
  for (const auto& key : host.loading_keys) {
    auto it = index.find(key);
    if (it != index.end()) view.models[it->second].loading = true;
  }
  return view;
}

Gateway::Gateway(GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers)
    : options_(std::move(options)), drivers_(std::move(drivers)) {}

absl::StatusOr<ModelsView> Gateway::ListModels(const CallContext& ctx, DriverKind driver) {
  auto candidates = drivers_->Candidates(driver, Operation::kListModels);
  if (!candidates.ok()) return candidates.status();
  DriverKind used = DriverKind::kAuto;
  auto host = WithFallback(*candidates, [&](Driver* d) {
    used = d->kind();
    return d->ListModels(ctx);
  });
  if (!host.ok()) return host.status();
  ModelsView view = BuildModelsView(*host);
  view.driver = used;
  return view;
}

absl::StatusOr<ModelView> Gateway::GetModel(const CallContext& ctx, const std::string& model) {
  auto view = ListModels(ctx, DriverKind::kAuto);
  if (!view.ok()) return view.status();
  for (auto& m : view->models) {
    if (m.info.key == model) return m;
    for (const auto& inst : m.instances) {
      if (inst.identifier == model) return m;
    }
  }
  std::vector<std::string> keys;
  for (const auto& m : view->models) keys.push_back(m.info.key);
  return absl::NotFoundError(absl::StrCat("model \"", model, "\" is not on the LM Studio host; ",
                                          "available: ", absl::StrJoin(keys, ", ")));
}

absl::StatusOr<backends::InstanceInfo> Gateway::Load(const CallContext& ctx, DriverKind driver,
                                                     backends::LoadParams params,
                                                     const backends::LoadProgressFn& progress,
                                                     DriverKind* used) {
  if (params.model_key.empty()) params.model_key = options_.default_model;
  if (params.model_key.empty()) {
    return absl::InvalidArgumentError("model is empty and no default model is configured");
  }
  auto candidates = drivers_->Candidates(driver, Operation::kLoad);
  if (!candidates.ok()) return candidates.status();
  return WithFallback(*candidates, [&](Driver* d) {
    if (used) *used = d->kind();
    return d->Load(ctx, params, progress);
  });
}

absl::StatusOr<std::vector<std::string>> Gateway::Unload(const CallContext& ctx,
                                                         DriverKind driver,
                                                         const std::string& model,
                                                         bool all_instances) {
  auto view = GetModel(ctx, model);
  if (!view.ok()) return view.status();
  std::vector<std::string> targets;
  for (const auto& inst : view->instances) {
    if (inst.identifier == model) targets = {inst.identifier};
  }
  if (targets.empty()) {
    for (const auto& inst : view->instances) targets.push_back(inst.identifier);
    if (targets.empty()) {
      return absl::NotFoundError(absl::StrCat("model \"", model, "\" has no loaded instance"));
    }
    if (targets.size() > 1 && !all_instances) {
      return absl::FailedPreconditionError(
          absl::StrCat("model \"", model, "\" has ", targets.size(), " instances (",
                       absl::StrJoin(targets, ", "),
                       "); name one identifier or set all_instances"));
    }
  }
  auto candidates = drivers_->Candidates(driver, Operation::kUnload);
  if (!candidates.ok()) return candidates.status();
  for (const auto& id : targets) {
    absl::Status st;
    for (Driver* d : *candidates) {
      st = d->Unload(ctx, id);
      if (!absl::IsUnavailable(st)) break;
    }
    if (!st.ok()) return st;
  }
  return targets;
}

std::unique_ptr<GenerateControl> Gateway::Generate(const CallContext& ctx, GenerateCall call,
                                                   std::shared_ptr<GenerateSink> sink) {
  const absl::Time start = absl::Now();
  std::string model = call.model.empty() ? options_.default_model : call.model;
  if (model.empty()) {
    sink->OnComplete(absl::InvalidArgumentError(
        "model is empty and no default model is configured (set default_model in the config)"));
    return std::make_unique<RunControl>(nullptr);
  }
  backends::Requirements req;
  req.tool_calls = !call.request.tools.empty();
  req.structured_output = !call.request.json_schema.empty();
  auto candidates = drivers_->Candidates(
      call.driver, call.request.chat ? Operation::kChat : Operation::kComplete, req);
  if (!candidates.ok()) {
    sink->OnComplete(candidates.status());
    return std::make_unique<RunControl>(nullptr);
  }
  call.request.model = model;
  auto run = std::make_shared<GenerateRun>(ctx, *std::move(candidates), std::move(call.request),
                                           std::move(sink), start);
  run->StartNext();
  return std::make_unique<RunControl>(run);
}

absl::StatusOr<Gateway::EmbedOutcome> Gateway::Embed(const CallContext& ctx, DriverKind driver,
                                                     const std::string& model,
                                                     const std::vector<std::string>& inputs) {
  std::string m = model.empty() ? options_.default_embedding_model : model;
  if (m.empty()) {
    return absl::InvalidArgumentError(
        "model is empty and no default embedding model is configured");
  }
  auto candidates = drivers_->Candidates(driver, Operation::kEmbed);
  if (!candidates.ok()) return candidates.status();
  EmbedOutcome out;
  out.model = m;
  auto result = WithFallback(*candidates, [&](Driver* d) {
    out.driver = d->kind();
    return d->Embed(ctx, m, inputs);
  });
  if (!result.ok()) return result.status();
  out.result = *std::move(result);
  return out;
}

absl::StatusOr<std::vector<int>> Gateway::Tokenize(const CallContext& ctx, DriverKind driver,
                                                   const std::string& model,
                                                   const std::string& text, DriverKind* used) {
  std::string m = model.empty() ? options_.default_model : model;
  if (m.empty()) {
    return absl::InvalidArgumentError("model is empty and no default model is configured");
  }
  auto candidates = drivers_->Candidates(driver, Operation::kTokenize);
  if (!candidates.ok()) return candidates.status();
  return WithFallback(*candidates, [&](Driver* d) {
    if (used) *used = d->kind();
    return d->Tokenize(ctx, m, text);
  });
}

}  // namespace lmgate::gateway
