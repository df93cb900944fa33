// HealthService: grpc.health.v1.Health for lmgate, in place of gRPC's default service.
//
// - "" (liveness) and the names the server sets (readiness: "lmgate.v1.Inference",
//   "lmgate.v1.ModelManager") answer what was last set; other plain names are unknown (Check:
//   NOT_FOUND; Watch: SERVICE_UNKNOWN, as gRPC's service does).
// - "lmgate.model/<name>" is per-model readiness, computed when asked and kept nowhere: SERVING
//   when the host answers and <name> is a model key it has with a READY instance (what
//   `model_ready` says), NOT_SERVING otherwise —
//   for a known model that is not loaded and for a name the host never had alike. Health is
//   unauthenticated, so it cannot tell a caller which models exist beyond those serving, and a
//   caller-chosen name costs no state (a Watch holds only its own stream).
// After Shutdown() every answer is NOT_SERVING and later changes are ignored.
//
// Thread-safe. The server owns the HealthCheckServiceInterface from Interface(); it shares this
// service's state, so either may go first.
#ifndef LMGATE_SERVICES_HEALTH_H_
#define LMGATE_SERVICES_HEALTH_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "grpc/health/v1/health.grpc.pb.h"

namespace lmgate::services {

class HealthService : public grpc::health::v1::Health::CallbackService {
 public:
  static constexpr char kModelPrefix[] = "lmgate.model/";

  // `model_ready(key)`: whether `key` is a known model with a READY instance. Called on gRPC
  // threads for Check and on Watch start; must be thread-safe and not block.
  explicit HealthService(std::function<bool(const std::string&)> model_ready);
  ~HealthService() override;

  // What server->GetHealthCheckService() should be (pass it to the builder with
  // grpc::HealthCheckServiceServerBuilderOption); SetServingStatus/Shutdown act on this service.
  std::unique_ptr<grpc::HealthCheckServiceInterface> Interface();
  // `model_key`'s readiness is now `ready`: tells the watchers of lmgate.model/<model_key>. Does
  // not call `model_ready`, so it may run inside a lifecycle event callback.
  void ModelChanged(const std::string& model_key, bool ready);
  // Something every model's readiness depends on changed (the host went away or came back):
  // asks `model_ready` again for each watched model and tells watchers whose answer changed.
  // Calls `model_ready`, so never from inside a lifecycle event callback.
  void RecheckModels();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req) override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_HEALTH_H_
