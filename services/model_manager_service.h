// lmgate.v1.ModelManager as a thin callback-API shell over the Gateway core.
#ifndef LMGATE_SERVICES_MODEL_MANAGER_SERVICE_H_
#define LMGATE_SERVICES_MODEL_MANAGER_SERVICE_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/gateway/gateway.h"
#include "services/observe.h"
#include "services/stream_reactor.h"
#include "services/worker_pool.h"

namespace lmgate::services {

// Thread-safe. `gateway` and `pool` must outlive the server.
class ModelManagerService final : public v1::ModelManager::CallbackService {
 public:
  // `identity` must outlive the server; it may hold null (no API keys, no allowlist).
  ModelManagerService(gateway::Gateway* gateway, WorkerPool* pool,
                      const admission::IdentityHolder* identity, Observer* observer)
      : gateway_(gateway), pool_(pool), identity_(identity), observer_(observer) {}

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* req,
                                       v1::ListModelsResponse* resp) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* req, v1::Model* resp) override;
  grpc::ServerWriteReactor<v1::LoadModelResponse>* LoadModel(
      grpc::CallbackServerContext* ctx, const v1::LoadModelRequest* req) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext* ctx,
                                        const v1::UnloadModelRequest* req,
                                        v1::UnloadModelResponse* resp) override;
  grpc::ServerWriteReactor<v1::ModelEvent>* WatchModels(
      grpc::CallbackServerContext* ctx, const v1::WatchModelsRequest* req) override;
  grpc::ServerUnaryReactor* GetServerInfo(grpc::CallbackServerContext* ctx,
                                          const v1::GetServerInfoRequest* req,
                                          v1::ServerInfo* resp) override;
  grpc::ServerUnaryReactor* UpdateModelPolicy(grpc::CallbackServerContext* ctx,
                                              const v1::UpdateModelPolicyRequest* req,
                                              v1::ModelPolicy* resp) override;

  // Server shutdown: every open WatchModels stream ends OK (after what is queued for it), and a
  // watch started from now on ends OK at once. Idempotent.
  void EndWatches();

 private:
  using WatchChannel = StreamReactor<v1::ModelEvent>::Channel;
  // False once EndWatches ran (then `channel` is finished instead of kept).
  bool TrackWatch(const std::shared_ptr<WatchChannel>& channel);
  bool WatchesEnded();

  gateway::Gateway* const gateway_;
  WorkerPool* const pool_;
  const admission::IdentityHolder* const identity_;
  Observer* const observer_;
  absl::Mutex watch_mu_;
  bool watches_ended_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::vector<std::weak_ptr<WatchChannel>> watches_ ABSL_GUARDED_BY(watch_mu_);
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_MODEL_MANAGER_SERVICE_H_
