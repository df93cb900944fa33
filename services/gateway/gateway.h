// Gateway: the gRPC-free core every RPC goes through. An inference request reads left to right:
// defaults → driver candidates → the grant (grant.h: quota → lease on the READY instance the name
// resolves to → a slot of that instance's fair queue) → driver (fallback along the candidates) →
// complete, and results come back with lmgate's bookkeeping (driver, queue/load waits, timing).
//
// Thread-safe. Unary methods block (call them from worker threads, not gRPC reactions);
// Generate() never blocks and reports through a GenerateSink.
#ifndef LMGATE_SERVICES_GATEWAY_GATEWAY_H_
#define LMGATE_SERVICES_GATEWAY_GATEWAY_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/selector.h"
#include "services/admission/identity.h"
#include "services/admission/quota.h"
#include "services/admission/scheduler.h"
#include "services/cluster/cluster_leases.h"
#include "services/cluster/cluster_quota.h"
#include "services/cluster/options.h"
#include "services/cluster/redis.h"
#include "services/cluster/shared_events.h"
#include "services/gateway/grant.h"
#include "services/lifecycle/events.h"
#include "services/lifecycle/registry.h"

namespace lmgate::gateway {

using backends::CallContext;
using backends::DriverKind;

inline constexpr int kDefaultMaxJsonDepth = 64;

struct GatewayOptions {
  // Model used when a chat/complete/tokenize request names none (at start: default_model()
  // is the one in force). Empty: such requests fail with INVALID_ARGUMENT asking for a model.
  std::string default_model;
  // Model used when an embed request names none.
  std::string default_embedding_model;
  // Residency policy (TTL, pins, per-model load settings and default sampling, capacity).
  lifecycle::RegistryOptions lifecycle;
  // Per-instance slots and fair queueing between tenants.
  admission::SchedulerOptions admission;
  // Deepest nesting accepted in a request's JSON fields (tool parameter schemas, the
  // structured-output schema, tool-call arguments); request validation (services/convert.cc)
  // refuses deeper ones with INVALID_ARGUMENT. Config key max_json_depth.
  int max_json_depth = kDefaultMaxJsonDepth;
  // Several lmgates on this host (config `cluster`): with `redis` set, tenant quotas are shared
  // through it (cluster::ClusterQuotas, namespaced by lifecycle.host) and lifecycle events reach
  // every gateway's WatchModels (cluster::SharedEvents); null = in-process. The
  // client belongs to the caller (services/server.cc) and must outlive the gateway.
  cluster::RedisClient* redis = nullptr;
  cluster::ClusterOptions cluster;
};

// A Chat or Complete request after conversion from the API.
struct GenerateCall {
  std::string model;  // as the caller named it; "" = default
  DriverKind driver = DriverKind::kAuto;
  std::optional<absl::Duration> ttl_hint;
  // Who is asking (limits, fairness, allowed models); null = the anonymous tenant without limits.
  // Generate/Embed/Tokenize answer PERMISSION_DENIED unless the tenant may use the model the
  // name resolves to (ResolveModelKey), checked before admission and again on the lease.
  const admission::Tenant* tenant = nullptr;
  admission::Priority priority = admission::Priority::kNormal;
  backends::GenerateRequest request;  // request.model is filled in by the gateway
};

// lmgate's view of a finished generation: the driver's result plus gateway bookkeeping.
struct GenerateOutcome {
  backends::GenerateResult result;
  DriverKind driver = DriverKind::kAuto;
  std::string model_key;
  std::string instance;
  absl::Duration queue_wait;
  absl::Duration load_wait;
  absl::Duration total_time;
  // From handing the request to the driver until it completed; total_time - upstream_time is
  // lmgate's own overhead plus queue and load waits.
  absl::Duration upstream_time;
  // The id the turn was stored under (services/conversations), "" when it was not stored.
  std::string response_id;
};

// Receives one Generate() call's progress. Same threading rules as backends::GenerateObserver:
// calls are sequential, OnComplete exactly once and last. Must not block.
class GenerateSink {
 public:
  virtual ~GenerateSink() = default;
  // The driver serving the call: once before any other callback, and once more per fallback to
  // another driver before anything was streamed.
  virtual void OnDriver(DriverKind driver) = 0;
  virtual void OnModelLoading(double progress) = 0;
  virtual void OnQueued(int position) = 0;
  virtual void OnEvent(backends::GenerateEvent event) = 0;
  virtual void OnComplete(absl::StatusOr<GenerateOutcome> outcome) = 0;
};

// Handle to cancel a running Generate(); idempotent, thread-safe, non-blocking.
class GenerateControl {
 public:
  virtual ~GenerateControl() = default;
  virtual void Cancel() = 0;
};

class Gateway {
 public:
  // Starts the lifecycle registry (which syncs with the host once; a host that is down is only
  // logged).
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(
      GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers);
  // Fails queued and loading requests (their sinks run inside) and joins the gateway's threads.
  // Shut the drivers down first (DriverSet::Shutdown): a driver thread completing a prediction
  // afterwards would release its lease into a destroyed registry.
  ~Gateway();

  // `driver` AUTO: models as lmgate sees them (`refresh` re-reads the host first); UNAVAILABLE
  // naming the host's last error while it has never answered a listing. Another driver: what that
  // driver lists now (the registry's view is not changed). `*answered` (if not null) gets the
  // driver that produced the view.
  absl::StatusOr<std::vector<lifecycle::ModelSnapshot>> ListModels(
      const CallContext& ctx, bool refresh, DriverKind driver = DriverKind::kAuto,
      DriverKind* answered = nullptr);
  // The model key `name` names, resolved as a request for it is: a model key first, else the
  // model of the instance with that identifier. NOT_FOUND when lmgate knows neither (no refresh).
  // Allowlists are checked against this, never against the string a caller sent.
  absl::StatusOr<std::string> ResolveModelKey(const std::string& name) const;
  // PERMISSION_DENIED unless `tenant` (null = anyone) may use the model `name` resolves to (an
  // unknown name is checked as a model key).
  absl::Status CheckTenantModel(const admission::Tenant* tenant, const std::string& name) const;
  // NOT_FOUND (with close matches) when neither a model key nor an instance identifier matches.
  // `tenant` (null = anyone): PERMISSION_DENIED unless it may use the model the name resolves
  // to (before and after the refresh an unknown name causes).
  absl::StatusOr<lifecycle::ModelSnapshot> GetModel(const CallContext& ctx,
                                                    const std::string& model,
                                                    const admission::Tenant* tenant = nullptr);
  // `tenant` (null = anyone) must be allowed the model, and `params.identifier` (if set) must be
  // a name its allowlist covers (PERMISSION_DENIED) that names no other model, by key or
  // instance (INVALID_ARGUMENT): an identifier is how callers name the instance afterwards.
  absl::StatusOr<lifecycle::InstanceSnapshot> Load(const CallContext& ctx, DriverKind driver,
                                                   backends::LoadParams params, bool keep_loaded,
                                                   bool new_instance,
                                                   const std::function<void(double)>& progress,
                                                   DriverKind* used,
                                                   const admission::Tenant* tenant = nullptr);
  // `tenant` (null = anyone) must be allowed the model `model` resolves to, also when the name
  // is only known after the refresh an unknown name causes (PERMISSION_DENIED). `*used` (if not
  // null) gets the driver that unloaded.
  absl::StatusOr<std::vector<std::string>> Unload(const CallContext& ctx, DriverKind driver,
                                                  const std::string& model, bool all_instances,
                                                  bool force,
                                                  const admission::Tenant* tenant = nullptr,
                                                  DriverKind* used = nullptr);

  std::unique_ptr<GenerateControl> Generate(const CallContext& ctx, GenerateCall call,
                                            std::shared_ptr<GenerateSink> sink);

  struct EmbedOutcome {
    backends::EmbedResult result;
    DriverKind driver = DriverKind::kAuto;
    std::string model_key;
    std::string instance;
  };
  absl::StatusOr<EmbedOutcome> Embed(const CallContext& ctx, DriverKind driver,
                                     const std::string& model,
                                     const std::vector<std::string>& inputs,
                                     std::optional<absl::Duration> ttl_hint,
                                     const admission::Tenant* tenant,
                                     admission::Priority priority = admission::Priority::kNormal);
  // Also serves CountTokens.
  absl::StatusOr<std::vector<int>> Tokenize(
      const CallContext& ctx, DriverKind driver, const std::string& model,
      const std::string& text, DriverKind* used, const admission::Tenant* tenant,
      admission::Priority priority = admission::Priority::kNormal);

  lifecycle::EventBus* events() { return &events_; }
  // The shared quotas (their Redis error counts, for metrics); null in embedded mode.
  const cluster::ClusterQuotas* cluster_quotas() const { return cluster_quotas_; }
  // Cluster mode: the registry's shared lease table (owned by the registry); else null.
  const cluster::ClusterLeases* cluster_leases() const { return cluster_leases_; }
  // Admission queue depth and running requests per model key (metrics), summed over the model's
  // instance queues.
  std::map<std::string, admission::QueueStats> AdmissionStats() const;
  // What metrics may call `model`: its model key when the host or the config knows it (a model
  // key, an instance identifier, a configured or default model), "" for none, else kOtherModel —
  // so caller-chosen names never become label values.
  static constexpr char kOtherModel[] = "other";
  std::string ModelLabel(const std::string& model) const;
  // True when `model_key` is a known model with a READY instance (per-model health).
  bool ModelReady(const std::string& model_key) const { return registry_->ModelReady(model_key); }
  // What the registry knows now (no host call): models and their instances.
  std::vector<lifecycle::ModelSnapshot> Snapshot() const { return registry_->Snapshot(); }
  // OK when the last sync with the host succeeded (readiness).
  absl::Status HostStatus() const { return registry_->host_status(); }
  // Re-reads the host now (readiness probes of a host that was down).
  absl::Status Refresh(const CallContext& ctx) { return registry_->Refresh(ctx); }
  // Re-reads the host unless a listing started less than `max_age` ago (the health loop).
  absl::Status RefreshIfOlder(const CallContext& ctx, absl::Duration max_age) {
    return registry_->RefreshIfOlder(ctx, max_age);
  }
  const GatewayOptions& options() const { return options_; }
  // The default model in force: options().default_model until UpdateModelPolicy or a reload
  // changes it (lifecycle::PolicyStore).
  std::string default_model() const { return registry_->default_model(); }
  // Model policies at run time (UpdateModelPolicy, a reload's ReplaceFilePolicies).
  lifecycle::ModelRegistry& registry() { return *registry_; }
  // The enabled drivers (GetServerInfo probes them).
  const backends::DriverSet& drivers() const { return *drivers_; }

 private:
  Gateway(GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers);
  absl::Status CheckNewIdentifier(const admission::Tenant* tenant, const std::string& model_key,
                                  const std::string& identifier) const;
  // A unary inference call (Embed, Tokenize) before its driver runs: its candidates and the
  // grant, taken on the same path as Generate (quota → lease → instance slot), blocking.
  struct UnaryPrep {
    std::vector<backends::Driver*> candidates;
    Grant grant;
  };
  absl::StatusOr<UnaryPrep> GrantUnary(const CallContext& ctx, DriverKind driver,
                                       backends::Operation op, const std::string& model,
                                       std::optional<absl::Duration> ttl_hint,
                                       const admission::Tenant* tenant,
                                       admission::Priority priority);

  const GatewayOptions options_;
  const std::shared_ptr<backends::DriverSet> drivers_;
  lifecycle::EventBus events_;
  lifecycle::DriverHostOps host_ops_;
  std::unique_ptr<lifecycle::ModelRegistry> registry_;
  // QuotaTracker, or ClusterQuotas (then also cluster_quotas_) when options.redis is set.
  std::unique_ptr<admission::Quotas> quotas_;
  cluster::ClusterQuotas* cluster_quotas_ = nullptr;
  cluster::ClusterLeases* cluster_leases_ = nullptr;
  // Cluster mode: the bus's events to and from the host's other gateways. Destroyed before
  // events_ (declared after it), after the registry stopped publishing (~Gateway).
  std::unique_ptr<cluster::SharedEvents> shared_events_;
  // Destroyed before the registry (explicitly, in ~Gateway): queued requests fail and release
  // their leases first. The in-process FairScheduler (embedded mode).
  std::unique_ptr<admission::SlotScheduler> scheduler_;
  std::unique_ptr<Granter> granter_;
};

}  // namespace lmgate::gateway

#endif  // LMGATE_SERVICES_GATEWAY_GATEWAY_H_
