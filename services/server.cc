#include "services/server.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/health.h"
#include "services/heap.h"
#include "services/inference_service.h"
#include "services/listener.h"
#include "services/model_manager_service.h"
#include "services/parse_errors.h"
#include "services/worker_pool.h"

namespace lmgate::services {
namespace {

// Free heap the process may keep for reuse; above it, the housekeeping loop trims.
constexpr size_t kKeepFreeHeapBytes = size_t{32} << 20;

// The transport's limits on the builder. gRPC 1.51 checks a message's size only once it has
// received the whole message, so what bounds the memory an oversized or slow request can hold
// before it is refused is the memory quota (past it gRPC cancels streams with RESOURCE_EXHAUSTED
// and shrinks its flow-control windows) and the streams allowed per connection.
void ApplyLimits(const TransportLimits& limits, grpc::ServerBuilder& builder) {
  grpc::ResourceQuota quota("lmgate");
  quota.Resize(static_cast<size_t>(limits.server_memory_bytes));
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(limits.max_request_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             limits.max_concurrent_streams_per_connection);
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(limits.handshake_timeout),
                                         std::numeric_limits<int>::max())));
}

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
  if (options.cluster.enabled()) {
    auto url =
        cluster::ParseRedisUrl(options.cluster.redis_url, options.cluster.redis_password_env);
    if (!url.ok()) return url.status();
    cluster::RedisOptions ro;
    ro.connect_timeout = ro.command_timeout = options.cluster.command_timeout;
    s->redis_ = std::make_unique<cluster::RedisClient>(*std::move(url), ro);
    if (auto st = s->redis_->Ping(); !st.ok()) {
      spdlog::warn("cluster: {} (starting anyway; quotas follow cluster.on_redis_error until it "
                   "answers)",
                   std::string(st.message()));
    } else {
      spdlog::info("cluster: sharing quotas with the other lmgates of {} through Redis at {}",
                   options.gateway.lifecycle.host, s->redis_->url().Redacted());
    }
    options.gateway.redis = s->redis_.get();
    options.gateway.cluster = options.cluster;
  }
  auto gw = gateway::Gateway::Create(options.gateway, options.drivers);
  if (!gw.ok()) return gw.status();
  s->gateway_ = *std::move(gw);
  s->drivers_ = options.drivers;
  s->drain_delay_ = options.drain_delay;
  if (options.ready_requires_pinned) {
    for (const auto& [key, policy] : options.gateway.lifecycle.models) {
      if (policy.keep_loaded) s->ready_pinned_.push_back(key);
    }
  }
  s->pool_ = std::make_unique<WorkerPool>(options.worker_threads);
  s->identity_ = std::make_unique<admission::IdentityHolder>(options.identity);
  s->observer_ = std::make_unique<Observer>(&s->metrics_, s->gateway_.get());
  if (const cluster::ClusterLeases* l = s->gateway_->cluster_leases(); l != nullptr) {
    s->metrics_.Describe("lmgate_cluster_lease_fallback_total", "counter",
                         "Lease decisions made without Redis (cluster mode): leases granted "
                         "locally, unloads/expiries/evictions refused.");
    s->metrics_.AddCollector([l](metrics::Registry& r) {
      const cluster::ClusterLeases::Stats st = l->stats();
      r.CounterSet("lmgate_cluster_redis_errors_total", {{"component", "leases"}},
                   static_cast<double>(st.redis_errors));
      r.CounterSet("lmgate_cluster_lease_fallback_total", {{"decision", "acquired_locally"}},
                   static_cast<double>(st.acquired_locally));
      r.CounterSet("lmgate_cluster_lease_fallback_total", {{"decision", "unload_refused"}},
                   static_cast<double>(st.unloads_refused));
    });
  }
  if (const cluster::ClusterQuotas* q = s->gateway_->cluster_quotas(); q != nullptr) {
    s->metrics_.Describe("lmgate_cluster_redis_errors_total", "counter",
                         "Failed Redis calls of the shared state (cluster mode).");
    s->metrics_.Describe("lmgate_cluster_quota_fallback_total", "counter",
                         "Quota checks decided without Redis (cluster.on_redis_error): "
                         "admitted (open) or refused (closed).");
    s->metrics_.AddCollector([q](metrics::Registry& r) {
      const cluster::ClusterQuotas::Stats st = q->stats();
      r.CounterSet("lmgate_cluster_redis_errors_total", {{"component", "quota"}},
                   static_cast<double>(st.redis_errors));
      r.CounterSet("lmgate_cluster_quota_fallback_total", {{"decision", "admitted"}},
                   static_cast<double>(st.admitted_without_redis));
      r.CounterSet("lmgate_cluster_quota_fallback_total", {{"decision", "refused"}},
                   static_cast<double>(st.refused_without_redis));
    });
  }
  if (!options.metrics_listen.empty()) {
    metrics::ServerOptions mo;
    mo.max_connections = options.metrics_max_connections;
    mo.timeout = options.metrics_timeout;
    auto ms = metrics::MetricsServer::Start(options.metrics_listen, &s->metrics_, mo);
    if (!ms.ok()) return ms.status();
    s->metrics_server_ = *std::move(ms);
  }
  s->conversation_store_ = std::make_unique<conversations::InProcessConversationStore>(
      options.conversations, options.conversations_clock);
  s->token_counter_ = std::make_unique<conversations::GatewayTokenCounter>(s->gateway_.get());
  WorkerPool* pool = s->pool_.get();
  conversations::Conversations::Options co;
  co.store = s->conversation_store_.get();
  co.gateway = s->gateway_.get();
  co.counter = s->token_counter_.get();
  co.schedule = [pool](std::function<void()> fn) { pool->Schedule(std::move(fn)); };
  s->conversations_ = std::make_unique<conversations::Conversations>(std::move(co));
  s->inference_ = std::make_unique<InferenceService>(s->gateway_.get(), s->pool_.get(),
                                                     s->identity_.get(), s->observer_.get(),
                                                     options.stream_limits,
                                                     s->conversations_.get());
  s->models_ = std::make_unique<ModelManagerService>(s->gateway_.get(), s->pool_.get(),
                                                     s->identity_.get(), s->observer_.get());
  for (const auto& factory : options.front_ends) {
    CoreRefs core{s->gateway_.get(), s->identity_.get(), s->observer_.get(), s->pool_.get(),
                  options.stream_limits, s->conversations_.get()};
    auto fe = factory(core);
    if (!fe.ok()) return fe.status();
    s->front_ends_.push_back(*std::move(fe));
  }

  // lmgate's own health service (services/health.h) instead of gRPC's default one: per-model
  // answers are computed, so unknown names leave no state and cannot be told from known ones.
  gateway::Gateway* gw_raw = s->gateway_.get();
  LmgateServer* self = s.get();
  s->host_up_ = gw_raw->HostStatus().ok();
  s->health_ = std::make_unique<HealthService>([gw_raw, self](const std::string& key) {
    return self->host_up_.load() && gw_raw->ModelReady(key);
  });
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // lmgate accepts the connections itself (services/listener.h: gRPC 1.51's own listener stops
  // for good on EMFILE and binds with SO_REUSEPORT).
  auto listener = Listener::Bind(options.listen);
  if (!listener.ok()) return listener.status();
  s->listener_ = *std::move(listener);
  s->port_ = s->listener_->port();
  grpc::ServerBuilder builder;
  builder.SetOption(
      std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(s->health_->Interface()));
  builder.RegisterService(s->health_.get());
  ApplyLimits(options.limits, builder);
  auto acceptor = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      options.credentials ? options.credentials : grpc::InsecureServerCredentials());
  builder.RegisterService(s->inference_.get());
  builder.RegisterService(s->models_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeParseErrorInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s->server_ = builder.BuildAndStart();
  if (!s->server_) return absl::InternalError("the gRPC server did not start");
  const int max_connections =
      EffectiveMaxConnections(options.limits.max_connections, FileLimit());
  if (max_connections < options.limits.max_connections) {
    spdlog::warn("limits.max_connections {} lowered to {} to stay under the fd limit {}",
                 options.limits.max_connections, max_connections, FileLimit());
  }
  s->listener_->Start(std::move(acceptor), max_connections);
  LmgateServer* raw = s.get();
  s->subscription_ = s->gateway_->events()->Subscribe("", [raw] {
    absl::MutexLock lock(&raw->events_mu_);
    if (!raw->events_closed_) raw->OnModelEvent();
  });
  // Readiness as of the start-up sync, before anyone can ask; the loop re-reads the host.
  s->PublishReadiness(s->host_up_.load());
  s->health_thread_ = std::thread([raw, i = options.health_interval] { raw->HealthLoop(i); });
  return s;
}

void LmgateServer::OnModelEvent() {
  using K = lifecycle::Event::Kind;
  lifecycle::Event e;
  while (gateway_->events()->Next(subscription_, &e)) {
    // Another gateway's event: its own logs and metrics have it, and this one's health follows
    // this gateway's registry (which sees the change at its next sync).
    if (e.remote) continue;
    observer_->ModelEvent(e);
    LogModelEvent(e);
    // Readiness changes only; a load starting or progressing leaves a ready instance serving.
    if (e.model_key.empty() || e.kind == K::kLoadStarted || e.kind == K::kLoadProgress ||
        e.kind == K::kSnapshot) {
      continue;
    }
    health_->ModelChanged(e.model_key, host_up_.load() && e.state == lifecycle::State::kReady);
    if (std::find(ready_pinned_.begin(), ready_pinned_.end(), e.model_key) !=
        ready_pinned_.end()) {
      absl::MutexLock lock(&health_mu_);
      health_kick_ = true;
    }
  }
}

void LmgateServer::PublishReadiness(bool host_ok) {
  bool ready = host_ok;
  for (const auto& key : ready_pinned_) ready = ready && gateway_->ModelReady(key);
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus("lmgate.v1.Inference", ready);
  health->SetServingStatus("lmgate.v1.ModelManager", ready);
}

void LmgateServer::HealthLoop(absl::Duration interval) {
  auto* health = server_->GetHealthCheckService();
  HeapReleaser heap(kKeepFreeHeapBytes);
  for (;;) {
    // Ask the host every round unless another listing just did (requests, the registry's own
    // refresh): readiness must follow the host within one interval. Half the interval bounds
    // the listing, so a host that stopped answering is seen in time too.
    backends::CallContext ctx;
    ctx.deadline = absl::Now() + std::max(interval / 2, absl::Milliseconds(50));
    const absl::Status host = gateway_->RefreshIfOlder(ctx, interval / 2);
    if (host_up_.exchange(host.ok()) != host.ok()) health_->RecheckModels();
    PublishReadiness(host.ok());
    // Watchdog: liveness fails (so the supervisor restarts lmgate) if the accept loop stopped
    // going round; it wakes every 500 ms even when idle.
    health->SetServingStatus("", listener_->Alive(absl::Seconds(5) + 2 * interval));
    // After a burst, give the freed memory back instead of keeping the peak RSS forever.
    heap.MaybeRelease();
    absl::MutexLock lock(&health_mu_);
    auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(health_mu_) {
      return stopping_ || health_kick_;
    };
    health_mu_.AwaitWithTimeout(absl::Condition(&wake), interval);
    if (stopping_) return;
    health_kick_ = false;
  }
}

int LmgateServer::connections() const { return listener_ ? listener_->connections() : 0; }

LmgateServer::~LmgateServer() {
  Stop(absl::ZeroDuration(), absl::ZeroDuration());
  // Nothing runs any more; destroy callers before what they call into (see server.h).
  metrics_server_.reset();
  front_ends_.clear();
  models_.reset();
  inference_.reset();
  conversations_.reset();
  gateway_.reset();  // joins the registry's threads; queued requests' sinks report to observer_
  observer_.reset();
}

void LmgateServer::Shutdown(absl::Duration grace) { Stop(grace, drain_delay_); }

void LmgateServer::Stop(absl::Duration grace, absl::Duration drain_delay) {
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
  // Watches would hold the grace open to the end; the proto promises them OK at shutdown.
  models_->EndWatches();
  if (drain_delay > absl::ZeroDuration()) {
    spdlog::info("draining: readiness NOT_SERVING, still serving for {}s",
                 absl::ToDoubleSeconds(drain_delay));
    absl::SleepFor(drain_delay);
  }
  listener_->Stop();  // before the server: it must not be handed connections once shut down
  for (auto& fe : front_ends_) fe->StopAccepting();
  // Stop accepting, drain for the grace, cancel what is left, and wait until every call is done
  // (the cancels reach the drivers through each call's OnCancel).
  const absl::Time deadline = absl::Now() + grace;
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  server_.reset();
  // The other front ends by the same deadline; their cancels reach the drivers likewise.
  for (auto& fe : front_ends_) fe->Stop(deadline);
  // Predictions a cancelled call started may still run on driver threads, and loads on the
  // registry's: stop the drivers now, while the registry and observer their completions reach
  // still exist. Blocking calls on the pool's threads return too, so the pool drains.
  if (drivers_) drivers_->Shutdown();
  pool_.reset();
}

}  // namespace lmgate::services
