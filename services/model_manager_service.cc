#include "services/model_manager_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "services/auth.h"
#include "services/call_util.h"
#include "services/convert.h"
#include "services/server_info.h"
#include "services/status.h"
#include "services/stream_reactor.h"
#include "google/protobuf/util/time_util.h"

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

bool Matches(const lifecycle::ModelSnapshot& m, const v1::ListModelsRequest& req) {
  if (req.type() == v1::MODEL_TYPE_LLM && m.info.type != backends::ModelType::kLlm) return false;
  if (req.type() == v1::MODEL_TYPE_EMBEDDING && m.info.type != backends::ModelType::kEmbedding)
    return false;
  if (req.loaded_only() && m.instances.empty() && m.state != lifecycle::State::kLoading)
    return false;
  return true;
}

// Streams lifecycle events of one subscription; unsubscribes when the stream ends.
//
// Events wait in the EventBus's bounded per-subscriber queue, not in the stream's: the reactor
// takes the next one only when the stream is idle (nothing queued, no write in flight). A client
// that does not read therefore costs one write in flight plus the bus's bounded queue, and what the
// bus drops is reported in `events_dropped` of the next event the client gets.
//
// The call is recorded (access log, lmgate_requests_total) when it is done, with the status the
// stream finished with; `info()` is filled in before the stream can end.
class WatchReactor : public StreamReactor<v1::ModelEvent> {
 public:
  WatchReactor(grpc::CallbackServerContext* ctx, lifecycle::EventBus* bus, Observer* observer,
               CallInfo info)
      : StreamReactor<v1::ModelEvent>(ctx), bus_(bus), observer_(observer), info_(std::move(info)) {}
  ~WatchReactor() override {
    bus_->Unsubscribe(id_);
    if (observer_ == nullptr) return;
    const grpc::Status st = channel()->final_status();
    observer_->Unary(info_, absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                                         st.error_message()));
  }
  CallInfo& info() { return info_; }
  // `tenant` outlives the server (it belongs to the Identity); only events of models it may use
  // are streamed.
  void Start(const std::string& filter, const admission::Tenant* tenant) {
    std::weak_ptr<Channel> weak = channel();
    lifecycle::EventBus* bus = bus_;
    auto id = std::make_shared<lifecycle::EventBus::SubscriberId>(0);
    // Runs on the publisher's thread (queue went non-empty) and on gRPC's (a write completed);
    // never blocks. Two pumps racing may queue one event behind the write: still bounded.
    auto pump = [weak, bus, id, tenant] {
      auto ch = weak.lock();
      if (!ch || *id == 0) return;
      lifecycle::Event e;
      while (ch->idle() && bus->Next(*id, &e)) {
        // An echo repeats a change another gateway's event already streamed (events.h).
        if (e.echo || !tenant->AllowsModel(e.model_key)) continue;
        v1::ModelEvent out;
        ToProto(e, &out);
        if (!ch->Push(std::move(out))) return;
      }
    };
    channel()->SetOnIdle(pump);
    id_ = bus_->Subscribe(filter, pump);
    *id = id_;
  }

 private:
  lifecycle::EventBus* const bus_;
  Observer* const observer_;
  CallInfo info_;
  lifecycle::EventBus::SubscriberId id_ = 0;
};

}  // namespace

grpc::ServerUnaryReactor* ModelManagerService::ListModels(grpc::CallbackServerContext* ctx,
                                                          const v1::ListModelsRequest* req,
                                                          v1::ListModelsResponse* resp) {
  return RunUnary(ctx, pool_, observer_, "ListModels",
                  [=](const backends::CallContext& call, CallInfo* info) {
    if (auto st = ValidateListModels(*req); !st.ok()) return ToGrpcStatus(st);
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    backends::DriverKind answered = backends::DriverKind::kAuto;
    auto models = gateway_->ListModels(call, req->refresh(), FromProto(req->driver()), &answered);
    if (!models.ok()) return ToGrpcStatus(models.status());
    resp->set_driver(ToProto(answered));
    info->driver = answered;
    for (const auto& m : *models) {
      if (Matches(m, *req) && (*tenant)->AllowsModel(m.info.key)) ToProto(m, resp->add_models());
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ModelManagerService::GetModel(grpc::CallbackServerContext* ctx,
                                                        const v1::GetModelRequest* req,
                                                        v1::Model* resp) {
  return RunUnary(ctx, pool_, observer_, "GetModel",
                  [=](const backends::CallContext& call, CallInfo* info) {
    if (auto st = ValidateModelName(req->model(), false); !st.ok()) return ToGrpcStatus(st);
    info->model = req->model();
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    auto model = gateway_->GetModel(call, req->model(), *tenant);
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
  CallInfo info = CallInfoFor(ctx, "LoadModel", id);
  info.model = req->model();
  info.driver = FromProto(req->driver());
  // Every way out records the call (access log, lmgate_requests_total) and then finishes it.
  Observer* const observer = observer_;
  auto finish = [observer, channel](const CallInfo& info, const absl::Status& st) {
    if (observer != nullptr) observer->Unary(info, st);
    channel->Finish(ToGrpcStatus(st));
  };
  auto params = ToLoadParams(*req);
  if (!params.ok()) {
    finish(info, params.status());
    return reactor;
  }
  // The gateway checks the model and identifier.
  auto tenant = Authorize(identity_->Get().get(), ctx, Role::kAdmin);
  if (!tenant.ok()) {
    finish(info, tenant.status());
    return reactor;
  }
  info.tenant = (*tenant)->name;
  backends::CallContext call = MakeCallContext(ctx, id);
  channel->SetOnCancel([token = call.cancel] { token->Cancel(); });
  const backends::DriverKind driver = FromProto(req->driver());
  const bool keep_loaded = req->config().keep_loaded();
  const bool new_instance = req->new_instance();
  pool_->Schedule([this, channel, call, driver, keep_loaded, new_instance, tenant = *tenant,
                   info = std::move(info), finish,
                   params = *std::move(params)]() mutable {
    // The model's limits are known once its name resolves (re-reading the host if need be):
    // check them before anything is sent. A name that does not resolve is the load's to report.
    const std::string name =
        params.model_key.empty() ? gateway_->default_model() : params.model_key;
    if (info.model.empty()) info.model = name;
    if (params.context_length && !name.empty()) {
      if (auto model = gateway_->GetModel(call, name); model.ok()) {
        if (auto st = ValidateLoadForModel(params, model->info); !st.ok()) {
          finish(info, st);
          return;
        }
      }
    }
    backends::DriverKind used = driver;
    auto progress = [&channel, &used](double p) {
      v1::LoadModelResponse r;
      r.mutable_progress()->set_fraction(p);
      r.set_driver(ToProto(used));
      channel->Push(std::move(r));
    };
    auto inst = gateway_->Load(call, driver, std::move(params), keep_loaded, new_instance,
                               progress, &used, tenant);
    info.driver = used;
    if (!inst.ok()) {
      finish(info, inst.status());
      return;
    }
    info.instance = inst->info.identifier;
    if (observer_ != nullptr) observer_->Unary(info, absl::OkStatus());
    channel->AddInitialMetadata(kDriverHeader, std::string(backends::DriverKindName(used)));
    v1::LoadModelResponse r;
    ToProto(*inst, r.mutable_instance());
    r.set_driver(ToProto(used));
    if (inst->load_duration > absl::ZeroDuration()) {
      SetDuration(inst->load_duration, r.mutable_load_duration());
    }
    channel->FinishWith(std::move(r), grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ModelManagerService::UnloadModel(grpc::CallbackServerContext* ctx,
                                                           const v1::UnloadModelRequest* req,
                                                           v1::UnloadModelResponse* resp) {
  return RunUnary(ctx, pool_, observer_, "UnloadModel",
                  [=](const backends::CallContext& call, CallInfo* info) {
    if (auto st = ValidateUnload(*req); !st.ok()) return ToGrpcStatus(st);
    info->model = req->model();
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kAdmin);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    const absl::Time start = absl::Now();
    backends::DriverKind used = FromProto(req->driver());
    auto ids = gateway_->Unload(call, FromProto(req->driver()), req->model(),
                                req->all_instances(), req->force(), *tenant, &used);
    info->driver = used;  // the driver that unloaded, for AUTO too (metrics, access log)
    if (!ids.ok()) return ToGrpcStatus(ids.status());
    for (const auto& i : *ids) resp->add_unloaded(i);
    SetDuration(absl::Now() - start, resp->mutable_unload_duration());
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::ModelEvent>* ModelManagerService::WatchModels(
    grpc::CallbackServerContext* ctx, const v1::WatchModelsRequest* req) {
  const std::string id = RequestIdFor(ctx);
  auto* reactor = new WatchReactor(ctx, gateway_->events(), observer_,
                                   CallInfoFor(ctx, "WatchModels", id));
  reactor->info().model = req->model();
  // A watch opened while lmgate shuts down would end OK at once after its snapshot, which a
  // client takes for a live lmgate: refuse it (no metadata, no snapshot) so it retries elsewhere
  // or once this lmgate is back.
  if (WatchesEnded()) {
    reactor->channel()->Finish(grpc::Status(
        grpc::StatusCode::UNAVAILABLE, "lmgate is shutting down; watch again once it is back"));
    return reactor;
  }
  reactor->channel()->AddInitialMetadata(kRequestIdHeader, id);
  if (auto st = ValidateWatch(*req); !st.ok()) {
    reactor->channel()->Finish(ToGrpcStatus(st));
    return reactor;
  }
  auto tenant = Authorize(identity_->Get().get(), ctx, Role::kInference);
  absl::Status allowed = tenant.ok() ? gateway_->CheckTenantModel(*tenant, req->model())
                                     : tenant.status();
  if (tenant.ok()) reactor->info().tenant = (*tenant)->name;
  if (!allowed.ok()) {
    reactor->channel()->Finish(ToGrpcStatus(allowed));
    return reactor;
  }
  // Events are by model key: a filter naming an instance watches its model.
  const std::string filter =
      req->model().empty() ? "" : gateway_->ResolveModelKey(req->model()).value_or(req->model());
  // Subscribe first, then snapshot: an event racing the snapshot is seen twice, never lost.
  reactor->Start(filter, *tenant);
  if (req->include_snapshot()) {
    backends::CallContext call = MakeCallContext(ctx, "watch");
    auto models = gateway_->ListModels(call, false);
    if (models.ok()) {
      for (const auto& m : *models) {
        if (!filter.empty() && m.info.key != filter) continue;
        if (!(*tenant)->AllowsModel(m.info.key)) continue;
        v1::ModelEvent e;
        e.set_kind(v1::ModelEvent::KIND_SNAPSHOT);
        *e.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
        e.set_model_key(m.info.key);
        e.set_state(ToProto(m.state));
        e.set_reason(m.reason);
        reactor->channel()->Push(std::move(e));
      }
    }
  }
  // Server shutdown ends the stream with OK at once (EndWatches).
  if (!TrackWatch(reactor->channel())) reactor->channel()->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ModelManagerService::GetServerInfo(grpc::CallbackServerContext* ctx,
                                                             const v1::GetServerInfoRequest*,
                                                             v1::ServerInfo* resp) {
  return RunUnary(ctx, pool_, observer_, "GetServerInfo",
                  [=](const backends::CallContext& call, CallInfo* info) {
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kAdmin);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    ServerReport report = CollectServerInfo(gateway_->drivers(), call);
    resp->set_version(report.version);
    resp->set_lmstudio_version(report.lmstudio_version);
    for (const DriverReport& d : report.drivers) {
      v1::DriverInfo* out = resp->add_drivers();
      out->set_driver(ToProto(d.kind));
      out->set_working(d.probe.ok());
      if (!d.probe.ok()) out->set_error(std::string(d.probe.message()));
      for (const auto& c : d.capabilities) out->add_capabilities(c);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ModelManagerService::UpdateModelPolicy(
    grpc::CallbackServerContext* ctx, const v1::UpdateModelPolicyRequest* req,
    v1::ModelPolicy* resp) {
  return RunUnary(ctx, pool_, observer_, "UpdateModelPolicy",
                  [=](const backends::CallContext& call, CallInfo* info) {
    auto change = ToPolicyChange(*req);
    if (!change.ok()) return ToGrpcStatus(change.status());
    info->model = req->model();
    auto tenant = Authorize(identity_->Get().get(), ctx, Role::kAdmin);
    if (!tenant.ok()) return ToGrpcStatus(tenant.status());
    info->tenant = (*tenant)->name;
    if (auto st = gateway_->CheckTenantModel(*tenant, change->model); !st.ok()) {
      return ToGrpcStatus(st);
    }
    lifecycle::ModelRegistry& registry = gateway_->registry();
    auto update = [&] {
      return registry.UpdatePolicy(change->model, change->update, change->reset,
                                   change->make_default);
    };
    auto view = update();
    // A model the host got since the last listing: re-read it (at most once per cache age).
    if (absl::IsNotFound(view.status()) && registry.RefreshIfStale(call).ok()) view = update();
    if (!view.ok()) return ToGrpcStatus(view.status());
    ToProto(*view, resp);
    return grpc::Status::OK;
  });
}

bool ModelManagerService::WatchesEnded() {
  absl::MutexLock lock(&watch_mu_);
  return watches_ended_;
}

bool ModelManagerService::TrackWatch(const std::shared_ptr<WatchChannel>& channel) {
  absl::MutexLock lock(&watch_mu_);
  if (watches_ended_) return false;
  watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                [](const auto& w) { return w.expired(); }),
                 watches_.end());
  watches_.push_back(channel);
  return true;
}

void ModelManagerService::EndWatches() {
  std::vector<std::weak_ptr<WatchChannel>> open;
  {
    absl::MutexLock lock(&watch_mu_);
    watches_ended_ = true;
    open.swap(watches_);
  }
  for (auto& w : open) {
    if (auto ch = w.lock()) ch->Finish(grpc::Status::OK);
  }
}

}  // namespace lmgate::services
