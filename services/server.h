// LmgateServer: the gRPC server (ModelManager + Inference + health + reflection) around one
// Gateway core. main.cc builds it from the config; tests build it with fake drivers on port 0.
#ifndef LMGATE_SERVICES_SERVER_H_
#define LMGATE_SERVICES_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/selector.h"
#include "services/admission/identity.h"
#include "services/cluster/options.h"
#include "services/cluster/redis.h"
#include "services/conversations/conversations.h"
#include "services/conversations/store.h"
#include "services/gateway/gateway.h"
#include "services/metrics/metrics.h"
#include "services/observe.h"
#include "services/stream_reactor.h"
#include "services/transport_limits.h"

namespace lmgate::services {

class HealthService;
class InferenceService;
class Listener;
class ModelManagerService;
class WorkerPool;
struct ServerOptions;

// What a front end besides the gRPC API (the HTTP ingress, services/http_ingress) serves with:
// the same core, keys, observer and worker pool. Valid until the front end's Stop() returned.
struct CoreRefs {
  gateway::Gateway* gateway = nullptr;
  admission::IdentityHolder* identity = nullptr;
  Observer* observer = nullptr;
  WorkerPool* pool = nullptr;
  StreamLimits stream_limits;
  // Stored conversations, shared with the gRPC Chat (POST /v1/responses).
  conversations::Conversations* conversations = nullptr;
};

// A front end the server starts after its services and stops in its own order (see
// LmgateServer): StopAccepting() when the gRPC listener stops; Stop(deadline) once the gRPC
// calls are done, by the same grace deadline — it ends (cancels) what still runs and returns when
// none of its threads calls into the core any more. Both once, from the server's thread.
class FrontEnd {
 public:
  virtual ~FrontEnd() = default;
  virtual void StopAccepting() = 0;
  virtual void Stop(absl::Time deadline) = 0;
};
using FrontEndFactory = std::function<absl::StatusOr<std::unique_ptr<FrontEnd>>(CoreRefs)>;

struct ServerOptions {
  // host:port; port 0 picks a free port (see port()).
  std::string listen = "127.0.0.1:50051";
  std::shared_ptr<backends::DriverSet> drivers;
  gateway::GatewayOptions gateway;
  // API keys and client allowlist; null = none (every caller is the anonymous tenant).
  std::shared_ptr<const admission::Identity> identity;
  // Threads for blocking driver calls (unary RPCs, loads).
  int worker_threads = 32;
  // Transport credentials; null = plaintext. See MakeServerCredentials().
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // host:port of the Prometheus /metrics endpoint; empty = no endpoint (metrics still collected).
  std::string metrics_listen;
  // Connections it serves at once and the timeout of each (see metrics::ExposerOptions).
  int metrics_max_connections = 16;
  absl::Duration metrics_timeout = absl::Seconds(10);
  // Bounds of each Chat/Complete stream's send queue (a client that does not read).
  StreamLimits stream_limits;
  // How often readiness (host reachable) is re-evaluated for the health service; the same loop
  // returns freed heap to the kernel after a burst (services/heap.h).
  absl::Duration health_interval = absl::Seconds(2);
  // Request size, transport memory, streams per connection, connections, handshake timeout.
  TransportLimits limits;
  // Shutdown(): how long lmgate keeps serving after readiness turned NOT_SERVING, before it
  // stops accepting (config drain_delay_seconds).
  absl::Duration drain_delay = absl::ZeroDuration();
  // Readiness also waits for every keep_loaded model (gateway.lifecycle.models) to have a READY
  // instance (config ready_requires_pinned).
  bool ready_requires_pinned = false;
  // Several lmgates on one host (config `cluster`): with redis_url set the server connects to
  // Redis (a Redis that is down is only logged) and the gateway shares tenant quotas through it.
  cluster::ClusterOptions cluster;
  // Stored conversations (ChatRequest.previous_response_id / store; config conversations.*) and
  // the clock their TTL runs on (null = the real one; tests pass a SimulatedClock that outlives
  // the server).
  conversations::StoreOptions conversations;
  admission::Clock* conversations_clock = nullptr;
  // Further front ends on the same core (main.cc adds the HTTP ingress for http_listen).
  std::vector<FrontEndFactory> front_ends;
};

// Health (grpc.health.v1, services/health.h): "" is liveness (SERVING while the process runs);
// "lmgate.v1.Inference" and "lmgate.v1.ModelManager" are readiness (SERVING while the LM Studio
// host answers, and with ready_requires_pinned every keep_loaded model is READY); and
// "lmgate.model/<model key>" is per-model readiness (SERVING while the host answers and the model
// has a READY instance, NOT_SERVING otherwise — also for a name the host does not have, so the
// unauthenticated health port does not say which models exist). The health loop re-reads the
// host every `health_interval` (a listing with half the interval as its deadline), so both
// follow a host that goes away or comes back within about one interval.
//
// Thread-safe. Shutdown() (or the destructor) goes in one order: every health status turns
// NOT_SERVING and the health loop stops; WatchModels streams end OK (they are not work to
// drain); for `drain_delay` (not in the destructor) new calls are still served, so load balancers
// see NOT_SERVING and stop sending first; then the server stops accepting calls and lets running
// calls finish until the grace period ends, then cancels the rest (their upstream predictions too) and
// waits until every call is done; then the drivers shut down (DriverSet::Shutdown: predictions
// still running upstream complete, the drivers' threads are joined) and the worker pool drains.
// After Shutdown() no thread calls into the gateway, observer or metrics any more; the
// destructor then destroys them, callers before callees.
//
// Ownership: main.cc (or a test) creates the drivers and shares the DriverSet with the server;
// the server shuts them down but does not require being their last owner.
struct TlsOptions {
  std::string cert_file;       // PEM server certificate chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA for client certificates (mTLS); empty = no client certs
  bool require_client_cert = false;
};
// TLS (and mTLS) credentials from PEM files; INVALID_ARGUMENT naming an unreadable file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls);

class LmgateServer {
 public:
  static absl::StatusOr<std::unique_ptr<LmgateServer>> Create(ServerOptions options);
  ~LmgateServer();

  int port() const { return port_; }
  // Client connections open now (see services/listener.h).
  int connections() const;
  // Port of the /metrics endpoint (0 if none).
  int metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  metrics::Registry& metrics() { return metrics_; }
  // The conversations every ingress shares (the HTTP ingress serves /v1/responses with it).
  conversations::Conversations* conversations() { return conversations_.get(); }
  // The i-th of ServerOptions::front_ends, as its factory made it.
  FrontEnd* front_end(size_t i) const { return front_ends_.at(i).get(); }
  // Idempotent; call from one thread. Takes drain_delay + at most grace (+ the cancels).
  void Shutdown(absl::Duration grace = absl::Seconds(10));
  // Puts `identity` (keys, roles, allowlists, limits; null = none) in force for calls that start
  // from now on; running calls keep theirs (admission::IdentityHolder). Used by a SIGHUP reload.
  void ReplaceIdentity(std::shared_ptr<const admission::Identity> identity) {
    identity_->Replace(std::move(identity));
  }
  // Puts a reload's model policies and default model in force under the run-time changes of
  // UpdateModelPolicy, which win for the fields they set; returns those ("MODEL.FIELD").
  std::vector<std::string> ReplacePolicies(std::map<std::string, lifecycle::ModelPolicy> models,
                                           std::string default_model) {
    return gateway_->registry().ReplaceFilePolicies(std::move(models), std::move(default_model));
  }

 private:
  LmgateServer() = default;
  void Stop(absl::Duration grace, absl::Duration drain_delay);

  // Declared callees first, so that each member outlives what calls into it: the observer
  // records into metrics_, the gateway's sinks report to the observer, the metrics endpoint and
  // the services read the gateway. ~LmgateServer also resets them explicitly in that order.
  std::unique_ptr<admission::IdentityHolder> identity_;
  metrics::Registry metrics_;
  std::unique_ptr<Observer> observer_;
  std::shared_ptr<backends::DriverSet> drivers_;
  std::unique_ptr<cluster::RedisClient> redis_;  // cluster mode only; outlives the gateway
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<conversations::ConversationStore> conversation_store_;
  std::unique_ptr<conversations::TokenCounter> token_counter_;
  std::unique_ptr<conversations::Conversations> conversations_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<ModelManagerService> models_;
  std::vector<std::unique_ptr<FrontEnd>> front_ends_;  // call into everything above
  absl::Duration drain_delay_;
  std::unique_ptr<HealthService> health_;  // outlives server_ (declared before it)
  // The host answered the health loop's last listing (per-model readiness needs it too).
  std::atomic<bool> host_up_{false};
  void HealthLoop(absl::Duration interval);
  // Sets the readiness services from `host_ok` (and ready_requires_pinned's models).
  void PublishReadiness(bool host_ok);
  void OnModelEvent();

  // Accepts the connections and hands them to server_; declared first, so destroyed after it.
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex health_mu_;
  bool stopping_ ABSL_GUARDED_BY(health_mu_) = false;
  bool health_kick_ ABSL_GUARDED_BY(health_mu_) = false;  // a pinned model changed: re-evaluate
  std::vector<std::string> ready_pinned_;  // keep_loaded keys readiness waits for (immutable)
  // Held while OnModelEvent runs: the bus may call a wake it copied before Unsubscribe()
  // returned, so Shutdown() closes this too before anything OnModelEvent uses goes away.
  absl::Mutex events_mu_;
  bool events_closed_ ABSL_GUARDED_BY(events_mu_) = false;
  uint64_t subscription_ = 0;
  std::thread health_thread_;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_SERVER_H_
