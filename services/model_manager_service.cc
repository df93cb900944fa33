#include "services/model_manager_service.h"

#include <string>
#include <utility>

#include "services/call_util.h"
#include "services/convert.h"
#include "services/status.h"
#include "services/stream_reactor.h"

namespace lmgate::services {
namespace {

using LoadReactor = StreamReactor<v1::LoadModelResponse>;

bool MergeLoadResponse(v1::LoadModelResponse* last, const v1::LoadModelResponse& next) {
  if (last->has_progress() && next.has_progress()) {
    *last = next;
    return true;
  }
  return false;
}

bool Matches(const gateway::ModelView& m, const v1::ListModelsRequest& req) {
  if (req.type() == v1::MODEL_TYPE_LLM && m.info.type != backends::ModelType::kLlm) return false;
  if (req.type() == v1::MODEL_TYPE_EMBEDDING && m.info.type != backends::ModelType::kEmbedding)
    return false;
  if (req.loaded_only() && m.instances.empty() && !m.loading) return false;
  return true;
}

}  // namespace

grpc::ServerUnaryReactor* ModelManagerService::ListModels(grpc::CallbackServerContext* ctx,
                                                          const v1::ListModelsRequest* req,
                                                          v1::ListModelsResponse* resp) {
  return RunUnary(ctx, pool_, [=](const backends::CallContext& call) {
    if (!v1::Driver_IsValid(req->driver()) || !v1::ModelType_IsValid(req->type())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "driver or type: unknown value");
    }
    auto view = gateway_->ListModels(call, FromProto(req->driver()));
    if (!view.ok()) return ToGrpcStatus(view.status());
    for (const auto& m : view->models) {
      if (Matches(m, *req)) ToProto(m, resp->add_models());
    }
    resp->set_driver(ToProto(view->driver));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ModelManagerService::GetModel(grpc::CallbackServerContext* ctx,
                                                        const v1::GetModelRequest* req,
                                                        v1::Model* resp) {
  return RunUnary(ctx, pool_, [=](const backends::CallContext& call) {
    if (auto st = ValidateModelName(req->model(), false); !st.ok()) return ToGrpcStatus(st);
    auto model = gateway_->GetModel(call, req->model());
    if (!model.ok()) return ToGrpcStatus(model.status());
    ToProto(*model, resp);
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::LoadModelResponse>* ModelManagerService::LoadModel(
    grpc::CallbackServerContext* ctx, const v1::LoadModelRequest* req) {
  auto* reactor = new LoadReactor(ctx, MergeLoadResponse);
  std::shared_ptr<LoadReactor::Channel> channel = reactor->channel();
  const std::string id = RequestIdFor(ctx);
  channel->AddInitialMetadata(kRequestIdHeader, id);
  auto params = ToLoadParams(*req);
  if (!params.ok()) {
    channel->Finish(ToGrpcStatus(params.status()));
    return reactor;
  }
  backends::CallContext call = MakeCallContext(ctx, id);
  channel->SetOnCancel([token = call.cancel] { token->Cancel(); });
  const backends::DriverKind driver = FromProto(req->driver());
  pool_->Schedule([this, channel, call, driver, params = *std::move(params)]() mutable {
    backends::DriverKind used = backends::DriverKind::kAuto;
    auto progress = [&channel, &used](double p) {
      v1::LoadModelResponse r;
      r.mutable_progress()->set_fraction(p);
      r.set_driver(ToProto(used));
      channel->Push(std::move(r));
    };
    auto inst = gateway_->Load(call, driver, std::move(params), progress, &used);
    if (!inst.ok()) {
      channel->Finish(ToGrpcStatus(inst.status()));
      return;
    }
    channel->AddInitialMetadata(kDriverHeader, std::string(backends::DriverKindName(used)));
    v1::LoadModelResponse r;
    ToProto(*inst, r.mutable_instance());
    r.set_driver(ToProto(used));
    channel->Push(std::move(r));
    channel->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ModelManagerService::UnloadModel(grpc::CallbackServerContext* ctx,
                                                           const v1::UnloadModelRequest* req,
                                                           v1::UnloadModelResponse* resp) {
  return RunUnary(ctx, pool_, [=](const backends::CallContext& call) {
    if (auto st = ValidateModelName(req->model(), false); !st.ok()) return ToGrpcStatus(st);
    if (!v1::Driver_IsValid(req->driver())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "driver: unknown value");
    }
    auto ids = gateway_->Unload(call, FromProto(req->driver()), req->model(), req->all_instances());
    if (!ids.ok()) return ToGrpcStatus(ids.status());
    for (const auto& i : *ids) resp->add_unloaded(i);
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::ModelEvent>* ModelManagerService::WatchModels(
    grpc::CallbackServerContext* ctx, const v1::WatchModelsRequest*) {
  auto* reactor = new StreamReactor<v1::ModelEvent>(ctx);
  reactor->channel()->Finish(grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      "WatchModels needs the model lifecycle registry (services/lifecycle), which this build "
      "does not have yet; poll ListModels meanwhile"));
  return reactor;
}

}  // namespace lmgate::services
