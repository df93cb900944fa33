#include "services/inference_service.h"

#include <atomic>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/auth.h"
#include "services/call_util.h"
#include "services/convert.h"
#include "services/status.h"
#include "services/stream_reactor.h"

namespace lmgate::services {
namespace {

using ChatReactor = StreamReactor<v1::ChatResponse>;

// Adjacent text deltas of the same kind travel as one message when the reader is behind.
bool MergeChatResponse(v1::ChatResponse* last, const v1::ChatResponse& next) {
  if (last->event_case() != next.event_case()) return false;
  switch (next.event_case()) {
    case v1::ChatResponse::kContentDelta:
      last->mutable_content_delta()->append(next.content_delta());
      return true;
    case v1::ChatResponse::kReasoningDelta:
      last->mutable_reasoning_delta()->append(next.reasoning_delta());
      return true;
    case v1::ChatResponse::kPromptProcessing:
    case v1::ChatResponse::kModelLoading:
    case v1::ChatResponse::kQueued:
      *last = next;  // only the newest progress matters
      return true;
    default:
      return false;
  }
}

// Turns gateway callbacks into ChatResponse messages on the stream.
class ChatSink : public gateway::GenerateSink {
 public:
  ChatSink(std::shared_ptr<ChatReactor::Channel> channel, bool no_deltas, bool quiet,
           Observer* observer, CallInfo info)
      : channel_(std::move(channel)),
        no_deltas_(no_deltas),
        quiet_(quiet),
        observer_(observer),
        info_(std::move(info)),
        driver_(info_.driver) {}

  void OnDriver(backends::DriverKind driver) override {
    driver_.store(driver);
    // A fallback before anything went out replaces the header: one per call.
    channel_->SetInitialMetadata(kDriverHeader, std::string(backends::DriverKindName(driver)));
  }
  void OnModelLoading(double progress) override {
    if (quiet_) return;
    v1::ChatResponse r;
    r.mutable_model_loading()->set_fraction(progress);
    channel_->Push(std::move(r));
  }
  void OnQueued(int position) override {
    if (quiet_) return;
    v1::ChatResponse r;
    r.mutable_queued()->set_position(position);
    channel_->Push(std::move(r));
  }
  void OnEvent(backends::GenerateEvent e) override {
    v1::ChatResponse r;
    switch (e.kind) {
      case backends::GenerateEvent::Kind::kContent:
        if (no_deltas_) return;
        r.set_content_delta(std::move(e.text));
        break;
      case backends::GenerateEvent::Kind::kReasoning:
        if (no_deltas_) return;
        r.set_reasoning_delta(std::move(e.text));
        break;
      case backends::GenerateEvent::Kind::kToolCallDelta: {
        if (no_deltas_) return;
        auto* t = r.mutable_tool_call_delta();
        t->set_index(e.tool_index);
        t->set_id(std::move(e.tool_id));
        t->set_name(std::move(e.tool_name));
        t->set_arguments(std::move(e.text));
        break;
      }
      case backends::GenerateEvent::Kind::kPromptProgress:
        if (quiet_) return;
        r.mutable_prompt_processing()->set_fraction(e.progress);
        break;
    }
    channel_->Push(std::move(r));
  }
  void OnComplete(absl::StatusOr<gateway::GenerateOutcome> outcome) override {
    if (observer_ != nullptr) {
      CallInfo info = info_;
      info.driver = driver_.load();  // the routed driver, for a failed or cancelled call too
      observer_->Generated(info, outcome);
    }
    if (!outcome.ok()) {
      channel_->Finish(ToGrpcStatus(outcome.status(), channel_.get()));
      return;
    }
    v1::ChatResponse r;
    ToProto(*outcome, r.mutable_result());
    channel_->FinishWith(std::move(r), grpc::Status::OK);
  }

 private:
  const std::shared_ptr<ChatReactor::Channel> channel_;
  const bool no_deltas_;
  const bool quiet_;
  Observer* const observer_;
  const CallInfo info_;
  std::atomic<backends::DriverKind> driver_;  // the requested driver until one is chosen
};

// A Chat's conversation fields around its converted call.
absl::StatusOr<conversations::ConversationCall> ToConversationCall(const v1::ChatRequest& req,
                                                                   gateway::GenerateCall call) {
  conversations::ConversationCall c;
  switch (req.truncation()) {
    case v1::TRUNCATION_UNSPECIFIED:
    case v1::TRUNCATION_DISABLED:
      c.truncation = conversations::Truncation::kDisabled;
      break;
    case v1::TRUNCATION_AUTO:
      c.truncation = conversations::Truncation::kAuto;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("truncation: unknown value ", static_cast<int>(req.truncation())));
  }
  c.previous_response_id = req.previous_response_id();
  c.store = req.store();
  c.call = std::move(call);
  return c;
}

}  // namespace

grpc::ServerWriteReactor<v1::ChatResponse>* InferenceService::StartGenerate(
    grpc::CallbackServerContext* ctx, const char* method,
    absl::StatusOr<gateway::GenerateCall> call, bool no_deltas, bool quiet,
    const v1::ChatRequest* conversation) {
  auto* reactor = new ChatReactor(ctx, MergeChatResponse);
  const auto& channel = reactor->channel();
  channel->SetLimits(stream_limits_);
  const std::string id = RequestIdFor(ctx);
  CallInfo info = CallInfoFor(ctx, method, id);
  channel->AddInitialMetadata(kRequestIdHeader, id);
  auto fail = [&](const absl::Status& st) {
    if (observer_ != nullptr) observer_->Generated(info, st);
    channel->Finish(ToGrpcStatus(st, channel.get()));
    return reactor;
  };
  if (!call.ok()) return fail(call.status());
  info.model = EffectiveModel(call->model, /*embedding=*/false);
  info.driver = call->driver;
  // The gateway checks the model: against the key the name resolves to, and again on the lease.
  auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
  if (!tenant.ok()) return fail(tenant.status());
  call->tenant = *tenant;
  info.tenant = (*tenant)->name;
  auto sink = std::make_shared<ChatSink>(channel, no_deltas, quiet, observer_, info);
  std::shared_ptr<gateway::GenerateControl> control;
  if (conversation != nullptr) {
    if (conversations_ == nullptr) {
      return fail(absl::FailedPreconditionError("this server keeps no conversations"));
    }
    auto conv = ToConversationCall(*conversation, *std::move(call));
    if (!conv.ok()) return fail(conv.status());
    control = conversations_->Generate(MakeCallContext(ctx, id), *std::move(conv), std::move(sink));
  } else {
    control = gateway_->Generate(MakeCallContext(ctx, id), *std::move(call), std::move(sink));
  }
  channel->SetOnCancel([control] { control->Cancel(); });
  return reactor;
}

ValidationLimits InferenceService::Limits() const {
  ValidationLimits limits;
  limits.max_json_depth = gateway_->options().max_json_depth;
  return limits;
}

std::string InferenceService::EffectiveModel(const std::string& model, bool embedding) const {
  if (!model.empty()) return model;
  return embedding ? gateway_->options().default_embedding_model
                   : gateway_->default_model();
}

grpc::ServerWriteReactor<v1::ChatResponse>* InferenceService::Chat(
    grpc::CallbackServerContext* ctx, const v1::ChatRequest* req) {
  const bool conversation = req->store() || !req->previous_response_id().empty();
  return StartGenerate(ctx, "Chat", ToGenerateCall(*req, Limits()), req->no_deltas(),
                       req->no_deltas() && req->quiet(), conversation ? req : nullptr);
}

grpc::ServerWriteReactor<v1::ChatResponse>* InferenceService::Complete(
    grpc::CallbackServerContext* ctx, const v1::CompleteRequest* req) {
  return StartGenerate(ctx, "Complete", ToGenerateCall(*req, Limits()), req->no_deltas(),
                       req->no_deltas() && req->quiet());
}

grpc::ServerUnaryReactor* InferenceService::Embed(grpc::CallbackServerContext* ctx,
                                                  const v1::EmbedRequest* req,
                                                  v1::EmbedResponse* resp) {
  return RunUnary(ctx, pool_, observer_, "Embed",
                  [=](const backends::CallContext& call, CallInfo* info) {
    if (auto st = ValidateEmbed(*req); !st.ok()) return ToGrpcStatus(st);
    info->model = EffectiveModel(req->model(), true);
    // The gateway checks the model.
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    std::vector<std::string> inputs(req->inputs().begin(), req->inputs().end());
    std::optional<absl::Duration> ttl;
    if (req->has_ttl_hint()) {
      ttl = absl::Seconds(req->ttl_hint().seconds()) + absl::Nanoseconds(req->ttl_hint().nanos());
    }
    // Validated by ValidateEmbed; queued like a Chat of the same priority.
    const admission::Priority priority =
        req->priority() == v1::PRIORITY_LOW    ? admission::Priority::kLow
        : req->priority() == v1::PRIORITY_HIGH ? admission::Priority::kHigh
                                               : admission::Priority::kNormal;
    auto out = gateway_->Embed(call, FromProto(req->driver()), req->model(), inputs, ttl, *tenant,
                               priority);
    if (!out.ok()) return ToGrpcStatus(out.status(), ctx);
    if (out->result.embeddings.size() != inputs.size()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("LM Studio returned ", out->result.embeddings.size(),
                                       " embeddings for ", inputs.size(), " inputs"));
    }
    for (size_t i = 0; i < out->result.embeddings.size(); ++i) {
      auto* e = resp->add_embeddings();
      e->set_index(static_cast<int>(i));
      e->mutable_values()->Add(out->result.embeddings[i].begin(), out->result.embeddings[i].end());
    }
    resp->set_model_key(out->model_key);
    resp->set_instance(out->instance);
    resp->set_prompt_tokens(out->result.prompt_tokens);
    resp->set_driver(ToProto(out->driver));
    info->driver = out->driver;
    ctx->AddInitialMetadata(kDriverHeader, std::string(backends::DriverKindName(out->driver)));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* InferenceService::RunTokenize(
    grpc::CallbackServerContext* ctx, const char* method, const v1::TokenizeRequest* req,
    std::function<void(const std::vector<int>&, v1::Driver)> fill) {
  return RunUnary(ctx, pool_, observer_, method,
                  [=](const backends::CallContext& call, CallInfo* info) {
    if (auto st = ValidateTokenize(*req); !st.ok()) return ToGrpcStatus(st);
    info->model = EffectiveModel(req->model(), false);
    // The gateway checks the model.
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    backends::DriverKind used = backends::DriverKind::kAuto;
    auto tokens = gateway_->Tokenize(call, FromProto(req->driver()), req->model(), req->text(),
                                     &used, *tenant);
    info->driver = used;
    if (!tokens.ok()) return ToGrpcStatus(tokens.status(), ctx);
    fill(*tokens, ToProto(used));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* ctx,
                                                     const v1::TokenizeRequest* req,
                                                     v1::TokenizeResponse* resp) {
  return RunTokenize(ctx, "Tokenize", req, [resp](const std::vector<int>& t, v1::Driver d) {
    resp->mutable_tokens()->Add(t.begin(), t.end());
    resp->set_driver(d);
  });
}

grpc::ServerUnaryReactor* InferenceService::CountTokens(grpc::CallbackServerContext* ctx,
                                                        const v1::TokenizeRequest* req,
                                                        v1::CountTokensResponse* resp) {
  return RunTokenize(ctx, "CountTokens", req, [resp](const std::vector<int>& t, v1::Driver d) {
    resp->set_token_count(static_cast<int>(t.size()));
    resp->set_driver(d);
  });
}

}  // namespace lmgate::services
