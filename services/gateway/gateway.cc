#include "services/gateway/gateway.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace lmgate::gateway {
namespace {

using backends::Driver;
using backends::GenerateEvent;
using backends::GenerateResult;
using backends::Operation;
using lifecycle::Lease;

// Runs `fn` on each candidate until one does not answer UNAVAILABLE (fallback along the order).
template <typename Fn>
auto WithFallback(const std::vector<Driver*>& candidates, Fn fn) -> decltype(fn(nullptr)) {
  decltype(fn(nullptr)) last = absl::UnavailableError("no driver");
  for (Driver* d : candidates) {
    last = fn(d);
    if (!absl::IsUnavailable(last.status())) return last;
  }
  return last;
}

// Request fields left unset take the model's configured defaults ("activate" defaults).
void ApplyDefaults(const backends::Sampling& d, backends::Sampling* s) {
  if (!s->temperature) s->temperature = d.temperature;
  if (!s->top_p) s->top_p = d.top_p;
  if (!s->top_k) s->top_k = d.top_k;
  if (!s->min_p) s->min_p = d.min_p;
  if (!s->max_tokens) s->max_tokens = d.max_tokens;
  if (s->stop.empty()) s->stop = d.stop;
  if (!s->presence_penalty) s->presence_penalty = d.presence_penalty;
  if (!s->frequency_penalty) s->frequency_penalty = d.frequency_penalty;
  if (!s->repeat_penalty) s->repeat_penalty = d.repeat_penalty;
  if (!s->seed) s->seed = d.seed;
}

// One Generate() call: the grant (quota, lease, slot), then the candidate drivers, falling back
// while nothing has been streamed. Owns the grant until completion.
class GenerateRun : public backends::GenerateObserver,
                    public std::enable_shared_from_this<GenerateRun> {
 public:
  GenerateRun(CallContext ctx, GenerateCall call, std::string model,
              std::vector<Driver*> candidates, std::shared_ptr<GenerateSink> sink,
              lifecycle::ModelRegistry* registry, Granter* granter)
      : ctx_(std::move(ctx)),
        model_(std::move(model)),
        ttl_hint_(call.ttl_hint),
        candidates_(std::move(candidates)),
        request_(std::move(call.request)),
        sink_(std::move(sink)),
        registry_(registry),
        granter_(granter),
        tenant_(call.tenant),
        priority_(call.priority),
        start_(absl::Now()) {}

  void Start() {
    // Announce the chosen driver before any progress event goes out (it becomes initial
    // metadata); a fallback announces the next one.
    sink_->OnDriver(candidates_[0]->kind());
    RequestGrant(nullptr);
  }

  // Quota (unless `permit` is the one this call holds already), lease, slot.
  void RequestGrant(std::unique_ptr<admission::QuotaPermit> permit) {
    GrantRequest req;
    req.model = model_;
    req.tenant = tenant_;
    req.priority = priority_;
    req.ttl_hint = ttl_hint_;
    req.permit = std::move(permit);
    std::weak_ptr<GenerateRun> weak = weak_from_this();
    req.on_load_progress = [weak](double p) {
      if (auto self = weak.lock()) self->sink_->OnModelLoading(p);
    };
    req.on_queued = [weak](int position) {
      if (auto self = weak.lock()) self->sink_->OnQueued(position);
    };
    req.on_force_unload = [weak] {
      if (auto self = weak.lock()) self->ForceUnloaded();
    };
    granter_->Start(ctx_, std::move(req), [self = shared_from_this()](absl::StatusOr<Grant> g) {
      self->OnGrant(std::move(g));
    });
  }

  // Never calls into the driver with mu_ held: a driver may complete synchronously.
  void Cancel() {
    if (ctx_.cancel) ctx_.cancel->Cancel();  // also fails a pending Acquire
    std::shared_ptr<backends::GenerateHandle> handle;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      handle = handle_;
    }
    if (handle) handle->Cancel();
  }

  void OnEvent(GenerateEvent event) override {
    streamed_ = true;
    sink_->OnEvent(std::move(event));
  }

  void OnComplete(absl::StatusOr<GenerateResult> result) override {
    if (!result.ok() && !streamed_) {
      if (absl::IsUnavailable(result.status()) && NextCandidate()) {
        StartDriver();
        return;
      }
      if (absl::IsNotFound(result.status()) && RetryAfterMissing()) return;
    }
    Grant grant;
    bool force_unloaded;
    DriverKind driver;
    {
      absl::MutexLock lock(&mu_);
      grant = std::move(grant_);
      force_unloaded = force_unloaded_;
      driver = candidates_[attempt_]->kind();
    }
    if (result.ok() && result->stats.stop_reason == backends::StopReason::kModelUnloaded) {
      // The text is truncated: a generation that did not finish is not OK.
      result = absl::UnavailableError(absl::StrCat(
          "model ", request_.model,
          " was unloaded outside lmgate during the request (output truncated); retry"));
    }
    if (!result.ok()) {
      absl::Status st = result.status();
      if (force_unloaded) {
        st = absl::UnavailableError(absl::StrCat("instance ", request_.model,
                                                 " was force-unloaded during the request"));
      }
      grant = Grant();
      sink_->OnComplete(st);
      return;
    }
    GenerateOutcome out;
    out.result = *std::move(result);
    out.driver = driver;
    out.model_key = grant.lease ? grant.lease->model_key() : model_;
    out.instance = request_.model;
    out.load_wait = grant.lease ? grant.lease->load_wait() : absl::ZeroDuration();
    out.queue_wait = grant.slot ? grant.slot->queue_wait() : absl::ZeroDuration();
    if (grant.permit) {
      grant.permit->Charge(out.result.stats.prompt_tokens + out.result.stats.completion_tokens);
    }
    out.total_time = absl::Now() - start_;
    out.upstream_time = absl::Now() - driver_start_;
    grant = Grant();  // the slot free, and the instance idle, before the caller hears back
    sink_->OnComplete(std::move(out));
  }

 private:
  void OnGrant(absl::StatusOr<Grant> grant) {
    if (!grant.ok()) {
      sink_->OnComplete(grant.status());
      return;
    }
    const Lease& lease = *grant->lease;
    if (auto p = registry_->PolicyFor(lease.model_key())) {
      ApplyDefaults(p->sampling, &request_.sampling);
    }
    request_.model = lease.instance();
    request_.instance_reference = lease.instance_reference();
    {
      absl::MutexLock lock(&mu_);
      grant_ = *std::move(grant);
    }
    StartDriver();
  }

  void StartDriver() {
    Driver* d;
    bool fallback;
    {
      absl::MutexLock lock(&mu_);
      d = cancelled_ ? nullptr : candidates_[attempt_];
      fallback = attempt_ > 0;
    }
    if (d == nullptr) {
      OnComplete(absl::CancelledError("the call was cancelled"));
      return;
    }
    // Start() announced the first candidate; only a fallback announces again.
    if (fallback) sink_->OnDriver(d->kind());
    driver_start_ = absl::Now();
    std::shared_ptr<backends::GenerateHandle> handle =
        d->Generate(ctx_, request_, shared_from_this());
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
      handle_ = handle;
    }
    if (cancelled) handle->Cancel();
  }

  bool NextCandidate() {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || attempt_ + 1 >= candidates_.size()) return false;
    ++attempt_;
    return true;
  }

  // The host did not know the instance lmgate routed to (it was unloaded behind lmgate's back):
  // tell the registry and ask for a grant again (keeping the quota permit), once.
  bool RetryAfterMissing() {
    Grant old;
    {
      absl::MutexLock lock(&mu_);
      if (retried_missing_ || cancelled_) return false;
      retried_missing_ = true;
      old = std::move(grant_);
    }
    registry_->ReportMissing(request_.model);
    std::unique_ptr<admission::QuotaPermit> permit = std::move(old.permit);
    old = Grant();
    RequestGrant(std::move(permit));
    return true;
  }

  void ForceUnloaded() {
    {
      absl::MutexLock lock(&mu_);
      force_unloaded_ = true;
    }
    Cancel();
  }

  const CallContext ctx_;
  const std::string model_;
  const std::optional<absl::Duration> ttl_hint_;
  const std::vector<Driver*> candidates_;
  backends::GenerateRequest request_;  // set before the first driver starts
  const std::shared_ptr<GenerateSink> sink_;
  lifecycle::ModelRegistry* const registry_;
  Granter* const granter_;
  const admission::Tenant* const tenant_;  // null = the anonymous tenant
  const admission::Priority priority_;
  const absl::Time start_;
  absl::Time driver_start_;  // set before each driver attempt, read at completion
  bool streamed_ = false;  // driver thread only
  absl::Mutex mu_;
  size_t attempt_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool retried_missing_ ABSL_GUARDED_BY(mu_) = false;
  bool force_unloaded_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<backends::GenerateHandle> handle_ ABSL_GUARDED_BY(mu_);
  Grant grant_ ABSL_GUARDED_BY(mu_);
};

class RunControl : public GenerateControl {
 public:
  explicit RunControl(std::shared_ptr<GenerateRun> run) : run_(std::move(run)) {}
  void Cancel() override {
    if (run_) run_->Cancel();
  }

 private:
  std::shared_ptr<GenerateRun> run_;
};

}  // namespace

Gateway::Gateway(GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers)
    : options_(std::move(options)), drivers_(drivers), host_ops_(std::move(drivers)) {}

// Callers first: the granter stops submitting, the scheduler fails queued requests (their sinks
// run now, releasing their leases), then the registry fails load waiters (through the stopped
// granter) and joins its threads. The drivers must already be shut down (services/server.h).
Gateway::~Gateway() {
  if (granter_) granter_->Shutdown();
  scheduler_.reset();
  registry_.reset();
  granter_.reset();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(
    GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers) {
  if (!drivers) return absl::InvalidArgumentError("Gateway needs a DriverSet");
  std::unique_ptr<Gateway> g(new Gateway(std::move(options), std::move(drivers)));
  // Cluster mode: events are shared from the registry's first one on (pins load at start).
  const std::string ns =
      g->options_.lifecycle.host.empty() ? "default" : g->options_.lifecycle.host;
  const std::string gateway_id = cluster::NewGatewayId();
  if (g->options_.redis != nullptr) {
    g->shared_events_ = std::make_unique<cluster::SharedEvents>(
        g->options_.redis, &g->events_, cluster::SharedEventsOptions{ns, gateway_id});
  }
  lifecycle::RegistryOptions lifecycle = g->options_.lifecycle;
  lifecycle.default_model = g->options_.default_model;
  if (g->options_.redis != nullptr) {
    cluster::ClusterLeasesOptions lo{ns, gateway_id, g->options_.cluster.heartbeat};
    lifecycle.lease_table = [g = g.get(), redis = g->options_.redis, lo] {
      auto t = std::make_unique<cluster::ClusterLeases>(redis, lo);
      g->cluster_leases_ = t.get();
      return t;
    };
  }
  auto registry = lifecycle::ModelRegistry::Create(std::move(lifecycle), &g->host_ops_,
                                                   &g->events_);
  if (!registry.ok()) return registry.status();
  g->registry_ = *std::move(registry);
  if (g->options_.redis != nullptr) {
    cluster::ClusterQuotaOptions qo;
    qo.ns = ns;
    qo.gateway_id = gateway_id;
    qo.on_redis_error = g->options_.cluster.on_redis_error;
    qo.heartbeat = g->options_.cluster.heartbeat;
    auto shared = std::make_unique<cluster::ClusterQuotas>(g->options_.redis, std::move(qo));
    g->cluster_quotas_ = shared.get();
    g->quotas_ = std::move(shared);
  } else {
    g->quotas_ = std::make_unique<admission::QuotaTracker>();
  }
  g->scheduler_ = std::make_unique<admission::FairScheduler>(g->options_.admission);
  g->granter_ = std::make_unique<Granter>(g->registry_.get(), g->scheduler_.get(),
                                          g->quotas_.get(),
                                          g->options_.admission.default_concurrency);
  return g;
}

std::map<std::string, admission::QueueStats> Gateway::AdmissionStats() const {
  std::map<std::string, admission::QueueStats> by_model;
  for (const auto& [key, s] : scheduler_->AllStats()) {
    // key = host "|" identifier (SlotKey); a base URL has no '|'.
    const size_t bar = key.find('|');
    const std::string instance = bar == std::string::npos ? key : key.substr(bar + 1);
    std::string model = registry_->KnownModelKey(instance);
    auto& m = by_model[model.empty() ? instance : model];
    m.in_use += s.in_use;
    m.queued += s.queued;
    m.concurrency += s.concurrency;
  }
  return by_model;
}

namespace {

// A driver's listing in the registry's shape: one snapshot per downloaded or loaded model key.
std::vector<lifecycle::ModelSnapshot> SnapshotsOf(const backends::HostModels& host) {
  std::map<std::string, lifecycle::ModelSnapshot> by_key;
  for (const auto& info : host.downloaded) by_key[info.key].info = info;
  for (const auto& li : host.loaded) {
    auto& m = by_key[li.model_key];
    if (m.info.key.empty()) {
      m.info.key = li.model_key;
      m.info.display_name = li.model_key;
      m.info.type = li.type;
      m.downloaded = false;
    }
    lifecycle::InstanceSnapshot inst;
    inst.info = li;
    inst.state = lifecycle::State::kReady;
    inst.ttl = li.ttl;
    m.instances.push_back(std::move(inst));
    m.state = lifecycle::State::kReady;
  }
  for (const auto& key : host.loading_keys) {
    auto it = by_key.find(key);
    if (it != by_key.end() && it->second.instances.empty()) {
      it->second.state = lifecycle::State::kLoading;
    }
  }
  std::vector<lifecycle::ModelSnapshot> out;
  for (auto& [k, m] : by_key) out.push_back(std::move(m));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<lifecycle::ModelSnapshot>> Gateway::ListModels(
    const CallContext& ctx, bool refresh, DriverKind driver, DriverKind* answered) {
  if (driver != DriverKind::kAuto) {
    auto candidates = drivers_->Candidates(driver, Operation::kListModels);
    if (!candidates.ok()) return candidates.status();
    auto host = (*candidates)[0]->ListModels(ctx);
    if (!host.ok()) return host.status();
    if (answered != nullptr) *answered = (*candidates)[0]->kind();
    return SnapshotsOf(*host);
  }
  if (refresh) {
    if (auto st = registry_->Refresh(ctx); !st.ok()) return st;
  }
  const std::optional<DriverKind> listed = host_ops_.last_listed();
  if (!listed) {
    return absl::UnavailableError(absl::StrCat(
        "lmgate has not reached the LM Studio host yet (last attempt: ",
        registry_->host_status().message(), "); retry, or set refresh to ask the host now"));
  }
  if (answered != nullptr) *answered = *listed;
  return registry_->Snapshot();
}

absl::StatusOr<std::string> Gateway::ResolveModelKey(const std::string& name) const {
  auto m = registry_->Get(name);
  if (!m.ok()) return m.status();
  if (m->info.key == name) return name;
  // `name` is an instance identifier of m; a model key equal to it still wins (as in Acquire).
  for (const auto& other : registry_->Snapshot()) {
    if (other.info.key == name) return name;
  }
  return m->info.key;
}

absl::Status Gateway::CheckTenantModel(const admission::Tenant* tenant,
                                       const std::string& name) const {
  if (tenant == nullptr || name.empty()) return absl::OkStatus();
  return tenant->CheckModel(ResolveModelKey(name).value_or(name), name);
}

absl::StatusOr<lifecycle::ModelSnapshot> Gateway::GetModel(const CallContext& ctx,
                                                           const std::string& model,
                                                           const admission::Tenant* tenant) {
  if (auto st = CheckTenantModel(tenant, model); !st.ok()) return st;
  auto m = registry_->Get(model);
  if (absl::IsNotFound(m.status())) {
    // Maybe downloaded or loaded since the last sync (not re-read if just listed).
    if (registry_->RefreshIfStale(ctx).ok()) m = registry_->Get(model);
  }
  if (!m.ok()) return ForTenant(tenant, m.status(), model);
  // The name may only have become known with the refresh: check the model it names now.
  if (tenant != nullptr) {
    if (auto st = tenant->CheckModel(m->info.key, model); !st.ok()) return st;
  }
  return m;
}

absl::Status Gateway::CheckNewIdentifier(const admission::Tenant* tenant,
                                         const std::string& model_key,
                                         const std::string& identifier) const {
  if (identifier.empty()) return absl::OkStatus();
  if (tenant != nullptr && !tenant->AllowsModel(identifier)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "tenant ", tenant->name, " may not name an instance \"", identifier,
        "\": config.identifier must itself be a name the tenant's models allowlist covers"));
  }
  auto owner = ResolveModelKey(identifier);
  if (owner.ok() && *owner != model_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.identifier: \"", identifier, "\" already names model ", *owner,
        "; an instance identifier must not be another model's key or instance"));
  }
  return absl::OkStatus();
}

absl::StatusOr<lifecycle::InstanceSnapshot> Gateway::Load(
    const CallContext& ctx, DriverKind driver, backends::LoadParams params, bool keep_loaded,
    bool new_instance, const std::function<void(double)>& progress, DriverKind* used,
    const admission::Tenant* tenant) {
  if (params.model_key.empty()) params.model_key = default_model();
  if (params.model_key.empty()) {
    return absl::InvalidArgumentError("model is empty and no default model is configured");
  }
  if (auto st = CheckTenantModel(tenant, params.model_key); !st.ok()) return st;
  const std::string model_key = ResolveModelKey(params.model_key).value_or(params.model_key);
  if (auto st = CheckNewIdentifier(tenant, model_key, params.identifier); !st.ok()) return st;
  if (driver != DriverKind::kAuto) {
    if (auto c = drivers_->Candidates(driver, Operation::kLoad); !c.ok()) return c.status();
  }
  return registry_->Load(ctx, driver, std::move(params), keep_loaded, new_instance, progress,
                         used, tenant != nullptr ? tenant->name : "");
}

absl::StatusOr<std::vector<std::string>> Gateway::Unload(const CallContext& ctx,
                                                         DriverKind driver,
                                                         const std::string& model,
                                                         bool all_instances, bool force,
                                                         const admission::Tenant* tenant,
                                                         DriverKind* used) {
  if (driver != DriverKind::kAuto) {
    if (auto c = drivers_->Candidates(driver, Operation::kUnload); !c.ok()) return c.status();
  }
  if (auto st = CheckTenantModel(tenant, model); !st.ok()) return st;
  const std::string by = tenant != nullptr ? tenant->name : "";
  auto ids = registry_->Unload(ctx, driver, model, all_instances, force, by, used);
  if (absl::IsNotFound(ids.status()) && registry_->RefreshIfStale(ctx).ok()) {
    if (auto st = CheckTenantModel(tenant, model); !st.ok()) return st;
    ids = registry_->Unload(ctx, driver, model, all_instances, force, by, used);
  }
  if (!ids.ok()) return ForTenant(tenant, ids.status(), model);
  return ids;
}

std::string Gateway::ModelLabel(const std::string& model) const {
  if (model.empty()) return "";
  std::string key = registry_->KnownModelKey(model);
  if (!key.empty()) return key;
  if (model == default_model() || model == options_.default_embedding_model) return model;
  return kOtherModel;
}

std::unique_ptr<GenerateControl> Gateway::Generate(const CallContext& ctx, GenerateCall call,
                                                   std::shared_ptr<GenerateSink> sink) {
  std::string model = call.model.empty() ? default_model() : call.model;
  if (model.empty()) {
    sink->OnComplete(absl::InvalidArgumentError(
        "model is empty and no default model is configured (set default_model in the config)"));
    return std::make_unique<RunControl>(nullptr);
  }
  if (auto st = CheckTenantModel(call.tenant, model); !st.ok()) {
    sink->OnComplete(st);
    return std::make_unique<RunControl>(nullptr);
  }
  backends::Requirements req;
  req.tool_calls = !call.request.tools.empty();
  req.structured_output = !call.request.json_schema.empty();
  req.context_overflow_policy = call.request.overflow != backends::OverflowPolicy::kUnset;
  auto candidates = drivers_->Candidates(
      call.driver, call.request.chat ? Operation::kChat : Operation::kComplete, req);
  if (!candidates.ok()) {
    sink->OnComplete(candidates.status());
    return std::make_unique<RunControl>(nullptr);
  }
  auto run = std::make_shared<GenerateRun>(ctx, std::move(call), std::move(model),
                                           *std::move(candidates), std::move(sink),
                                           registry_.get(), granter_.get());
  run->Start();
  return std::make_unique<RunControl>(run);
}

absl::StatusOr<Gateway::UnaryPrep> Gateway::GrantUnary(
    const CallContext& ctx, DriverKind driver, Operation op, const std::string& model,
    std::optional<absl::Duration> ttl_hint, const admission::Tenant* tenant,
    admission::Priority priority) {
  if (model.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("model is empty and no default ",
                                                   op == Operation::kEmbed ? "embedding " : "",
                                                   "model is configured"));
  }
  if (auto st = CheckTenantModel(tenant, model); !st.ok()) return st;
  UnaryPrep prep;
  auto candidates = drivers_->Candidates(driver, op);
  if (!candidates.ok()) return candidates.status();
  prep.candidates = *std::move(candidates);
  GrantRequest req;
  req.model = model;
  req.tenant = tenant;
  req.priority = priority;
  req.ttl_hint = ttl_hint;
  auto grant = granter_->Wait(ctx, std::move(req));
  if (!grant.ok()) return grant.status();
  prep.grant = *std::move(grant);
  return prep;
}

absl::StatusOr<Gateway::EmbedOutcome> Gateway::Embed(const CallContext& ctx, DriverKind driver,
                                                     const std::string& model,
                                                     const std::vector<std::string>& inputs,
                                                     std::optional<absl::Duration> ttl_hint,
                                                     const admission::Tenant* tenant,
                                                     admission::Priority priority) {
  auto prep = GrantUnary(ctx, driver, Operation::kEmbed,
                         model.empty() ? options_.default_embedding_model : model, ttl_hint,
                         tenant, priority);
  if (!prep.ok()) return prep.status();
  EmbedOutcome out;
  out.model_key = prep->grant.lease->model_key();
  out.instance = prep->grant.lease->instance();
  auto result = WithFallback(prep->candidates, [&](Driver* d) {
    out.driver = d->kind();
    return d->Embed(ctx, out.instance, inputs);
  });
  if (!result.ok()) return result.status();
  out.result = *std::move(result);
  if (prep->grant.permit) prep->grant.permit->Charge(out.result.prompt_tokens);
  return out;
}

absl::StatusOr<std::vector<int>> Gateway::Tokenize(const CallContext& ctx, DriverKind driver,
                                                   const std::string& model,
                                                   const std::string& text, DriverKind* used,
                                                   const admission::Tenant* tenant,
                                                   admission::Priority priority) {
  auto prep = GrantUnary(ctx, driver, Operation::kTokenize,
                         model.empty() ? default_model() : model, std::nullopt, tenant,
                         priority);
  if (!prep.ok()) return prep.status();
  const std::string instance = prep->grant.lease->instance();
  return WithFallback(prep->candidates, [&](Driver* d) {
    if (used) *used = d->kind();
    return d->Tokenize(ctx, instance, text);
  });
}

}  // namespace lmgate::gateway
