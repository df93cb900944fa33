#include "services/server.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.pb.h"
#include "services/heap.h"
#include "services/inference_service.h"
#include "services/model_manager_service.h"
#include "services/parse_errors.h"
#include "services/worker_pool.h"

namespace lmgate::services {
namespace {

// Free heap the process may keep for reuse; above it, the housekeeping loop trims.
constexpr size_t kKeepFreeHeapBytes = size_t{32} << 20;

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls) {
  auto read = [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("tls: cannot read ", path));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto cert = read(tls.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = read(tls.key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions opts(
      tls.client_ca_file.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : (tls.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY));
  if (!tls.client_ca_file.empty()) {
    auto ca = read(tls.client_ca_file);
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
  }
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(opts);
}

absl::StatusOr<std::unique_ptr<LmgateServer>> LmgateServer::Create(ServerOptions options) {
  if (!options.drivers) return absl::InvalidArgumentError("ServerOptions.drivers is not set");
  if (options.worker_threads < 1) {
    return absl::InvalidArgumentError("worker_threads must be >= 1");
  }
  std::unique_ptr<LmgateServer> s(new LmgateServer());
  auto gw = gateway::Gateway::Create(options.gateway, options.drivers);
  if (!gw.ok()) return gw.status();
  s->gateway_ = *std::move(gw);
  s->drivers_ = options.drivers;
  s->pool_ = std::make_unique<WorkerPool>(options.worker_threads);
  s->identity_ = options.identity;
  s->observer_ = std::make_unique<Observer>(&s->metrics_, s->gateway_.get());
  if (!options.metrics_listen.empty()) {
    auto ms = metrics::MetricsServer::Start(options.metrics_listen, &s->metrics_);
    if (!ms.ok()) return ms.status();
    s->metrics_server_ = *std::move(ms);
  }
  s->inference_ = std::make_unique<InferenceService>(s->gateway_.get(), s->pool_.get(),
                                                     s->identity_.get(), s->observer_.get());
  s->models_ = std::make_unique<ModelManagerService>(s->gateway_.get(), s->pool_.get(),
                                                     s->identity_.get(), s->observer_.get());

  grpc::EnableDefaultHealthCheckService(true);
  // gRPC's built-in health service is implemented with upb, so grpc.health.v1 is not in
  // protobuf's generated pool, which is what reflection serves: grpcurl would list
  // grpc.health.v1.Health but fail to describe or call it ("Symbol not found"). Touching the C++
  // descriptor registers health.proto there (tests/clients/grpcurl_recipes.test.mjs).
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      options.listen,
      options.credentials ? options.credentials : grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->inference_.get());
  builder.RegisterService(s->models_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeParseErrorInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               " (address in use or not local?)"));
  }
  LmgateServer* raw = s.get();
  s->subscription_ = s->gateway_->events()->Subscribe("", [raw] {
    absl::MutexLock lock(&raw->events_mu_);
    if (!raw->events_closed_) raw->OnModelEvent();
  });
  s->health_thread_ = std::thread([raw, i = options.health_interval] { raw->HealthLoop(i); });
  return s;
}

void LmgateServer::OnModelEvent() {
  lifecycle::Event e;
  auto* health = server_->GetHealthCheckService();
  while (gateway_->events()->Next(subscription_, &e)) {
    observer_->ModelEvent(e);
    if (e.model_key.empty()) continue;
    health->SetServingStatus("lmgate.model/" + e.model_key, e.state == lifecycle::State::kReady);
  }
}

void LmgateServer::HealthLoop(absl::Duration interval) {
  auto* health = server_->GetHealthCheckService();
  HeapReleaser heap(kKeepFreeHeapBytes);
  for (;;) {
    absl::Status host = gateway_->HostStatus();
    if (!host.ok()) {
      backends::CallContext ctx;
      ctx.deadline = absl::Now() + interval;
      host = gateway_->Refresh(ctx);
    }
    health->SetServingStatus("lmgate.v1.Inference", host.ok());
    health->SetServingStatus("lmgate.v1.ModelManager", host.ok());
    // After a burst, give the freed memory back instead of keeping the peak RSS forever.
    heap.MaybeRelease();
    absl::MutexLock lock(&health_mu_);
    if (health_mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
  }
}

LmgateServer::~LmgateServer() {
  Shutdown(absl::ZeroDuration());
  // Nothing runs any more; destroy callers before what they call into (see server.h).
  metrics_server_.reset();
  models_.reset();
  inference_.reset();
  gateway_.reset();  // joins the registry's threads; queued requests' sinks report to observer_
  observer_.reset();
}

void LmgateServer::Shutdown(absl::Duration grace) {
  if (!server_) return;
  {
    absl::MutexLock lock(&health_mu_);
    stopping_ = true;
  }
  if (health_thread_.joinable()) health_thread_.join();
  gateway_->events()->Unsubscribe(subscription_);
  {
    absl::MutexLock lock(&events_mu_);  // waits for an OnModelEvent still running
    events_closed_ = true;
  }
  server_->GetHealthCheckService()->Shutdown();
  // Stop accepting, drain for the grace, cancel what is left, and wait until every call is done
  // (the cancels reach the drivers through each call's OnCancel).
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
  // Predictions a cancelled call started may still run on driver threads, and loads on the
  // registry's: stop the drivers now, while the registry and observer their completions reach
  // still exist. Blocking calls on the pool's threads return too, so the pool drains.
  if (drivers_) drivers_->Shutdown();
  pool_.reset();
}

}  // namespace lmgate::services
