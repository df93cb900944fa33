#include "backends/sdk_ws/sdk_driver.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/http/url.h"
#include "backends/log.h"
#include "backends/sdk_ws/codec.h"
#include "backends/sdk_ws/logging.h"
#include "backends/sdk_ws/prediction.h"

namespace lmgate::backends::sdk_ws {
namespace {

Namespace NamespaceOf(ModelType type) {
  return type == ModelType::kEmbedding ? Namespace::kEmbedding : Namespace::kLlm;
}

std::string RandomToolIdPrefix() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat("call_", absl::Hex(rng() & 0xffffffffffff, absl::kZeroPad12), "_");
}

// One running prediction: the channel's observer and the state behind its GenerateHandle.
// OnMessage/OnClose run on the io thread; Cancel() and Attach() on any thread.
class Prediction final : public ChannelObserver, public std::enable_shared_from_this<Prediction> {
 public:
  Prediction(std::shared_ptr<GenerateObserver> observer, std::string request_id)
      : observer_(std::move(observer)), request_id_(std::move(request_id)),
        stream_(RandomToolIdPrefix()) {}

  // Called once, right after the channel was opened. A token that is already cancelled (or
  // fires concurrently) cancels the channel: channel_ is set before the callback is added.
  void Attach(std::shared_ptr<Channel> channel, std::shared_ptr<CancelToken> token) {
    {
      absl::MutexLock lock(&mu_);
      if (completed_) return;
      channel_ = std::move(channel);
      token_ = token;
    }
    if (!token) return;
    CancelToken::CallbackId id = token->AddCallback([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->Cancel();
    });
    bool completed;
    {
      absl::MutexLock lock(&mu_);
      completed = completed_;
      if (!completed) token_callback_ = id;
    }
    if (completed && id != 0) token->RemoveCallback(id);
  }

  void Cancel() {
    std::shared_ptr<Channel> channel;
    {
      absl::MutexLock lock(&mu_);
      channel = channel_;
    }
    if (channel) channel->Cancel(absl::CancelledError("the prediction was cancelled"));
  }

  void OnMessage(const Json& message, const absl::Status& cancel_reason) override {
    if (observer_ == nullptr) return;
    events_.clear();
    stream_.Consume(message, &events_);
    for (GenerateEvent& e : events_) observer_->OnEvent(std::move(e));
    if (!stream_.done()) return;
    if (!cancel_reason.ok()) return Complete(cancel_reason);
    GenerateResult result = stream_.TakeResult();
    RequestLog(Log(), request_id_)
        .debug("prediction done: {} prompt + {} completion tokens", result.stats.prompt_tokens,
               result.stats.completion_tokens);
    Complete(std::move(result));
  }

  void OnClose(absl::Status status) override {
    if (observer_ == nullptr) return;
    if (status.ok()) status = absl::InternalError("LM Studio ended the prediction without a result");
    Complete(std::move(status));
  }

 private:
  void Complete(absl::StatusOr<GenerateResult> result) {
    std::shared_ptr<CancelToken> token;
    CancelToken::CallbackId id = 0;
    {
      absl::MutexLock lock(&mu_);
      completed_ = true;
      channel_.reset();
      token = std::move(token_);
      id = token_callback_;
    }
    if (token && id != 0) token->RemoveCallback(id);
    if (!result.ok()) {
      RequestLog(Log(), request_id_)
          .debug("prediction failed: {}", std::string(result.status().message()));
    }
    std::shared_ptr<GenerateObserver> observer = std::move(observer_);
    observer_ = nullptr;
    observer->OnComplete(std::move(result));
  }

  // io thread only:
  std::shared_ptr<GenerateObserver> observer_;  // null once completed
  const std::string request_id_;
  PredictionStream stream_;
  std::vector<GenerateEvent> events_;

  absl::Mutex mu_;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Channel> channel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<CancelToken> token_ ABSL_GUARDED_BY(mu_);
  CancelToken::CallbackId token_callback_ ABSL_GUARDED_BY(mu_) = 0;
};

class PredictionHandle final : public GenerateHandle {
 public:
  explicit PredictionHandle(std::weak_ptr<Prediction> p) : prediction_(std::move(p)) {}
  void Cancel() override {
    if (auto p = prediction_.lock()) p->Cancel();
  }

 private:
  std::weak_ptr<Prediction> prediction_;
};

// Collects a `loadModel` channel for the thread blocked in Load(), which also runs the progress
// callback (so it runs on the loading thread, as LoadProgressFn promises).
class LoadWaiter final : public ChannelObserver {
 public:
  void OnMessage(const Json& message, const absl::Status&) override {
    LoadMessage m = DecodeLoadMessage(message);
    absl::MutexLock lock(&mu_);
    if (m.kind == LoadMessage::Kind::kProgress) {
      progress_ = m.progress;
    } else if (m.kind == LoadMessage::Kind::kSuccess) {
      info_ = std::move(m.info);
    }
  }
  void OnClose(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    closed_ = std::move(status);
  }

  // Blocks until done; `progress` runs on this thread, outside the lock.
  absl::StatusOr<InstanceInfo> Wait(const LoadProgressFn& progress) {
    while (true) {
      std::optional<double> p;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &LoadWaiter::Ready));
        // Pending progress first, so that a fast load still reports it.
        if (!progress_.has_value()) {
          if (info_.has_value()) return *std::move(info_);
          if (closed_->ok()) {
            return absl::InternalError("LM Studio ended the load without reporting success");
          }
          return *closed_;
        }
        p.swap(progress_);
      }
      if (progress) progress(*p);
    }
  }

 private:
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return progress_.has_value() || info_.has_value() || closed_.has_value();
  }

  absl::Mutex mu_;
  std::optional<double> progress_ ABSL_GUARDED_BY(mu_);
  std::optional<InstanceInfo> info_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<SdkWsDriver>> SdkWsDriver::Create(Options options) {
  absl::StatusOr<http::HostUrl> url = http::ParseHostUrl(options.host.base_url);
  if (!url.ok()) return url.status();
  ClientIdentity identity = GuestIdentity();
  if (!options.host.api_token.empty()) {
    absl::StatusOr<ClientIdentity> from_token = IdentityFromApiToken(options.host.api_token);
    if (!from_token.ok()) return from_token.status();
    identity = *std::move(from_token);
  }
  if (url->scheme == "https") {
    absl::Status unsupported = absl::FailedPreconditionError(
        "the sdk_ws driver does not support TLS (https/wss) hosts yet; use the rest or openai "
        "driver, or reach LM Studio over plain http");
    return std::unique_ptr<SdkWsDriver>(new SdkWsDriver(std::move(options), nullptr, unsupported));
  }
  Connection::Options c;
  c.host = url->host;
  c.port = url->port;
  c.path_prefix = url->prefix;
  c.identity = std::move(identity);
  c.connect_timeout = options.host.connect_timeout;
  c.idle_timeout = options.host.idle_timeout;
  c.initial_backoff = options.initial_backoff;
  c.max_backoff = options.max_backoff;
  c.cancel_grace = options.cancel_grace;
  absl::StatusOr<std::unique_ptr<Connection>> connection = Connection::Create(std::move(c));
  if (!connection.ok()) return connection.status();
  return std::unique_ptr<SdkWsDriver>(
      new SdkWsDriver(std::move(options), *std::move(connection), absl::OkStatus()));
}

SdkWsDriver::SdkWsDriver(Options options, std::unique_ptr<Connection> connection,
                         absl::Status unsupported)
    : options_(std::move(options)), connection_(std::move(connection)),
      unsupported_(std::move(unsupported)) {}

SdkWsDriver::~SdkWsDriver() = default;

void SdkWsDriver::Shutdown() {
  if (connection_) connection_->Shutdown();
}

Capabilities SdkWsDriver::capabilities() const {
  Capabilities c;
  c.list_models = c.load = c.load_progress = c.unload = true;
  c.chat = c.complete = c.embed = c.tokenize = true;
  c.inference_stats = c.tool_calls = c.structured_output = c.context_overflow_policy = true;
  return c;
}

ConnectionStats SdkWsDriver::connection_stats() const {
  return connection_ ? connection_->stats() : ConnectionStats();
}

absl::Time SdkWsDriver::UnaryDeadline(const CallContext& ctx) const {
  return std::min(ctx.deadline, absl::Now() + options_.host.request_timeout);
}

ModelType SdkWsDriver::KnownType(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = types_.find(name);
  return it == types_.end() ? ModelType::kUnknown : it->second;
}

void SdkWsDriver::Remember(const std::string& name, ModelType type) {
  if (name.empty() || type == ModelType::kUnknown) return;
  absl::MutexLock lock(&mu_);
  types_[name] = type;
}

void SdkWsDriver::Forget(const std::string& name) {
  absl::MutexLock lock(&mu_);
  types_.erase(name);
}

absl::StatusOr<std::vector<Json>> SdkWsDriver::CallAll(const CallContext& ctx,
                                                       std::vector<RpcRequest> requests,
                                                       bool idempotent) {
  absl::Time deadline = UnaryDeadline(ctx);
  int retries = idempotent ? std::max(options_.host.max_retries, 0) : 0;
  for (int attempt = 0;; ++attempt) {
    bool last = attempt >= retries;
    absl::StatusOr<std::vector<Json>> results =
        connection_->CallAll(last ? std::move(requests) : requests, deadline, ctx.cancel);
    if (last || results.ok() || results.status().code() != absl::StatusCode::kUnavailable ||
        !ctx.CheckAlive().ok()) {
      return results;
    }
    RequestLog(Log(), ctx.request_id)
        .debug("retrying after: {}", std::string(results.status().message()));
  }
}

absl::StatusOr<Json> SdkWsDriver::Call(const CallContext& ctx, RpcRequest request,
                                       bool idempotent) {
  std::vector<RpcRequest> one;
  one.push_back(std::move(request));
  absl::StatusOr<std::vector<Json>> results = CallAll(ctx, std::move(one), idempotent);
  if (!results.ok()) return results.status();
  return std::move(results->front());
}

absl::Status SdkWsDriver::Probe(const CallContext& ctx) {
  if (!unsupported_.ok()) return unsupported_;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() - probe_time_ < options_.probe_cache) return probe_status_;
  }
  absl::Time deadline = std::min(ctx.deadline, absl::Now() + options_.host.connect_timeout * 2);
  absl::Status status = connection_->Connect(Namespace::kSystem, deadline);
  absl::MutexLock lock(&mu_);
  probe_time_ = absl::Now();
  probe_status_ = status;
  return status;
}

absl::StatusOr<std::string> SdkWsDriver::HostVersion(const CallContext& ctx) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  absl::StatusOr<Json> r = Call(ctx, {Namespace::kSystem, "version", std::nullopt}, true);
  if (!r.ok()) return r.status();
  if (!r->is_object() || !r->contains("version") || !(*r)["version"].is_string()) {
    return absl::InternalError("the host's system/version answer has no \"version\" string");
  }
  return (*r)["version"].get<std::string>();
}

absl::StatusOr<HostModels> SdkWsDriver::ListModels(const CallContext& ctx) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  std::vector<RpcRequest> requests = {{Namespace::kSystem, "listDownloadedModels", std::nullopt},
                                      {Namespace::kLlm, "listLoaded", std::nullopt},
                                      {Namespace::kEmbedding, "listLoaded", std::nullopt}};
  absl::StatusOr<std::vector<Json>> results = CallAll(ctx, std::move(requests), true);
  if (!results.ok()) return results.status();
  HostModels out;
  absl::StatusOr<std::vector<ModelInfo>> downloaded = DecodeModelList((*results)[0]);
  if (!downloaded.ok()) return downloaded.status();
  out.downloaded = *std::move(downloaded);
  for (int i : {1, 2}) {
    absl::StatusOr<std::vector<InstanceInfo>> loaded = DecodeInstanceList((*results)[i]);
    if (!loaded.ok()) return loaded.status();
    for (InstanceInfo& instance : *loaded) {
      if (instance.type == ModelType::kUnknown) {
        instance.type = i == 1 ? ModelType::kLlm : ModelType::kEmbedding;
      }
      out.loaded.push_back(std::move(instance));
    }
  }
  for (const ModelInfo& m : out.downloaded) Remember(m.key, m.type);
  for (const InstanceInfo& i : out.loaded) Remember(i.identifier, i.type);
  std::vector<InstanceInfo*> instances;
  for (InstanceInfo& i : out.loaded) instances.push_back(&i);
  ReadSlotCounts(ctx, instances);
  return out;
}

void SdkWsDriver::ReadSlotCounts(const CallContext& ctx,
                                 const std::vector<InstanceInfo*>& instances) {
  // Like the SDK (LLM.getLoadConfig), which `lms ps` uses: the host's load config says how many
  // slots it applied, and a config without the field means the schema default. The instance
  // infos carry no count. Not known (an error, say the instance just went) = left as it is.
  std::vector<InstanceInfo*> llms;
  std::vector<RpcRequest> requests;
  for (InstanceInfo* i : instances) {
    if (i->type != ModelType::kLlm || i->instance_reference.empty()) continue;
    llms.push_back(i);
    requests.push_back({Namespace::kLlm, "getLoadConfig",
                        Json{{"specifier", InstanceReferenceSpecifier(i->instance_reference)}}});
  }
  if (requests.empty()) return;
  absl::StatusOr<std::vector<Json>> configs = CallAll(ctx, std::move(requests), true);
  if (!configs.ok()) {
    RequestLog(Log(), ctx.request_id).debug("no slot counts: {}", configs.status().ToString());
    return;
  }
  for (size_t k = 0; k < llms.size() && k < configs->size(); ++k) {
    if (std::optional<int> slots = DecodeParallelSlots((*configs)[k])) {
      llms[k]->parallel_slots = *slots;
    }
  }
}

absl::StatusOr<InstanceInfo> SdkWsDriver::Load(const CallContext& ctx, const LoadParams& params,
                                               const LoadProgressFn& progress) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  absl::Time deadline = std::min(ctx.deadline, absl::Now() + options_.host.load_timeout);
  ModelType type = KnownType(params.model_key);
  if (type == ModelType::kUnknown) {
    // The namespace (llm/embedding) depends on the model; ask the host what it is.
    absl::StatusOr<Json> listed =
        Call(ctx, {Namespace::kSystem, "listDownloadedModels", std::nullopt}, true);
    if (!listed.ok()) return listed.status();
    if (absl::StatusOr<std::vector<ModelInfo>> models = DecodeModelList(*listed); models.ok()) {
      for (const ModelInfo& m : *models) Remember(m.key, m.type);
    }
    type = KnownType(params.model_key);  // still unknown: llm, and the host decides
  }
  absl::StatusOr<Json> creation = EncodeLoadModel(params, type);
  if (!creation.ok()) return creation.status();

  RequestLog(Log(), ctx.request_id).debug("loading {}", params.model_key);
  auto waiter = std::make_shared<LoadWaiter>();
  std::shared_ptr<Channel> channel = connection_->OpenChannel(
      NamespaceOf(type), "loadModel", *std::move(creation), deadline, waiter);
  CancelToken::CallbackId cancel_id = 0;
  if (ctx.cancel) {
    cancel_id = ctx.cancel->AddCallback(
        [channel] { channel->Cancel(absl::CancelledError("the load was cancelled")); });
  }
  absl::StatusOr<InstanceInfo> info = waiter->Wait(progress);
  if (cancel_id != 0) ctx.cancel->RemoveCallback(cancel_id);
  if (!info.ok()) return info.status();
  if (info->type == ModelType::kUnknown) {
    info->type = type == ModelType::kEmbedding ? ModelType::kEmbedding : ModelType::kLlm;
  }
  // The SDK's instance info has no slot count; the one we asked for is what the host applied.
  if (info->parallel_slots == 0 && params.parallel_slots.has_value() &&
      info->type == ModelType::kLlm) {
    info->parallel_slots = *params.parallel_slots;
  }
  std::vector<InstanceInfo*> one = {&*info};
  ReadSlotCounts(ctx, one);
  Remember(info->identifier, info->type);
  return info;
}

absl::Status SdkWsDriver::Unload(const CallContext& ctx, const std::string& identifier) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  absl::StatusOr<Json> result = CallOnModelNamespace(ctx, identifier, false, [&](Namespace ns) {
    return RpcRequest{ns, "unloadModel", EncodeUnloadModel(identifier)};
  });
  if (!result.ok()) return result.status();
  Forget(identifier);
  return absl::OkStatus();
}

absl::StatusOr<Json> SdkWsDriver::CallOnModelNamespace(
    const CallContext& ctx, const std::string& model, bool idempotent,
    const std::function<RpcRequest(Namespace)>& make) {
  ModelType known = KnownType(model);
  absl::StatusOr<Json> result = Call(ctx, make(NamespaceOf(known)), idempotent);
  if (known != ModelType::kUnknown || result.ok() ||
      result.status().code() != absl::StatusCode::kNotFound) {
    return result;
  }
  absl::StatusOr<Json> other = Call(ctx, make(Namespace::kEmbedding), idempotent);
  if (other.ok()) return other;
  return result;  // the llm answer is the more useful error
}

std::unique_ptr<GenerateHandle> SdkWsDriver::Generate(const CallContext& ctx,
                                                      const GenerateRequest& request,
                                                      std::shared_ptr<GenerateObserver> observer) {
  absl::Status early = unsupported_.ok() ? ctx.CheckAlive() : unsupported_;
  absl::StatusOr<Json> creation = EncodePredictCreation(request);
  if (early.ok() && !creation.ok()) early = creation.status();
  if (!early.ok()) {
    observer->OnComplete(early);
    return std::make_unique<NoopGenerateHandle>();
  }
  auto prediction = std::make_shared<Prediction>(std::move(observer), ctx.request_id);
  std::shared_ptr<Channel> channel =
      connection_->OpenChannel(Namespace::kLlm, std::string(PredictEndpoint(request)),
                               *std::move(creation), ctx.deadline, prediction);
  prediction->Attach(std::move(channel), ctx.cancel);
  return std::make_unique<PredictionHandle>(prediction);
}

absl::StatusOr<EmbedResult> SdkWsDriver::Embed(const CallContext& ctx, const std::string& model,
                                               const std::vector<std::string>& inputs) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  std::vector<RpcRequest> requests;
  requests.reserve(inputs.size());
  for (const std::string& input : inputs) {
    requests.push_back({Namespace::kEmbedding, "embedString", EncodeEmbedString(model, input)});
  }
  absl::StatusOr<std::vector<Json>> results = CallAll(ctx, std::move(requests), true);
  if (!results.ok()) return results.status();
  EmbedResult out;
  out.embeddings.reserve(results->size());
  for (const Json& result : *results) {
    absl::StatusOr<std::vector<float>> embedding = DecodeEmbedding(result);
    if (!embedding.ok()) return embedding.status();
    out.embeddings.push_back(*std::move(embedding));
  }
  return out;
}

absl::StatusOr<std::vector<int>> SdkWsDriver::Tokenize(const CallContext& ctx,
                                                       const std::string& model,
                                                       const std::string& text) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  absl::StatusOr<Json> result = CallOnModelNamespace(ctx, model, true, [&](Namespace ns) {
    return RpcRequest{ns, "tokenize", EncodeTokenizerInput(model, text)};
  });
  if (!result.ok()) return result.status();
  return DecodeTokens(*result);
}

absl::StatusOr<int> SdkWsDriver::CountTokens(const CallContext& ctx, const std::string& model,
                                             const std::string& text) {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status s = ctx.CheckAlive(); !s.ok()) return s;
  absl::StatusOr<Json> result = CallOnModelNamespace(ctx, model, true, [&](Namespace ns) {
    return RpcRequest{ns, "countTokens", EncodeTokenizerInput(model, text)};
  });
  if (!result.ok()) return result.status();
  return DecodeTokenCount(*result);
}

}  // namespace lmgate::backends::sdk_ws
