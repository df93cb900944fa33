#include "services/cluster/cluster_quota.h"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace lmgate::cluster {
namespace {

bool HasLimits(const admission::Limits& l) {
  return l.requests_per_minute > 0 || l.tokens_per_minute > 0 || l.concurrent_streams > 0;
}

QuotaLimits SharedLimits(const admission::Limits& l) {
  QuotaLimits q;
  q.requests_per_minute = l.requests_per_minute;
  q.tokens_per_minute = l.tokens_per_minute;
  q.concurrent_streams = l.concurrent_streams;
  return q;
}

}  // namespace

std::string NewGatewayId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "lmgate", ":", getpid(), ":",
                      absl::ToUnixMillis(absl::Now()));
}

namespace {

SharedQuotaOptions SharedOptions(const ClusterQuotaOptions& o) {
  SharedQuotaOptions s;
  s.permit_ttl = 3 * o.heartbeat;
  return s;
}

ClusterQuotaOptions Resolved(ClusterQuotaOptions o) {
  if (o.gateway_id.empty()) o.gateway_id = NewGatewayId();
  if (o.ns.empty()) o.ns = "default";
  return o;
}

// A permit no store tracks: no limits to hold, or admitted while Redis could not answer without a
// concurrent-stream limit.
class NoopPermit : public admission::QuotaPermit {
 public:
  void Charge(int64_t) override {}
};

}  // namespace

// A request's hold on its tenant's shared quota: its stream permit (if the tenant has a
// concurrent_streams limit) until destroyed, and the tokens it charges.
class ClusterPermit : public admission::QuotaPermit {
 public:
  ClusterPermit(ClusterQuotas* owner, std::string tenant, QuotaLimits limits, std::string id,
                std::unique_ptr<admission::QuotaPermit> local)
      : owner_(owner),
        tenant_(std::move(tenant)),
        limits_(limits),
        id_(std::move(id)),
        local_(std::move(local)) {}
  ~ClusterPermit() override {
    local_.reset();
    if (!id_.empty()) owner_->Release(tenant_, id_);
  }
  void Charge(int64_t tokens) override {
    if (local_ != nullptr) local_->Charge(tokens);
    owner_->Charge(tenant_, limits_, tokens);
  }

 private:
  ClusterQuotas* const owner_;
  const std::string tenant_;
  const QuotaLimits limits_;
  const std::string id_;  // "" = no stream permit
  // Admitted without Redis (open): its hold on this gateway's own limits.
  std::unique_ptr<admission::QuotaPermit> local_;
};

ClusterQuotas::ClusterQuotas(RedisClient* client, ClusterQuotaOptions options)
    : client_(client),
      options_(Resolved(std::move(options))),
      shared_(client, options_.ns, SharedOptions(options_)),
      thread_([this] { Loop(); }),
      admit_pool_(std::max(1, options_.admit_threads)) {}

ClusterQuotas::~ClusterQuotas() {
  stop_.Notify();
  thread_.join();
}

ClusterQuotas::Stats ClusterQuotas::stats() const {
  Stats s;
  s.redis_errors = redis_errors_.load();
  s.admitted_without_redis = admitted_without_redis_.load();
  s.refused_without_redis = refused_without_redis_.load();
  return s;
}

bool ClusterQuotas::SkippingRedis() const {
  absl::MutexLock lock(&health_mu_);
  return absl::Now() < skip_until_;
}

void ClusterQuotas::NoteRedis(const absl::Status& st, const char* what) {
  if (!st.ok()) ++redis_errors_;
  bool log_error = false, log_recovered = false;
  {
    absl::MutexLock lock(&health_mu_);
    const absl::Time now = absl::Now();
    if (st.ok()) {
      log_recovered = failing_;
      failing_ = false;
      skip_until_ = absl::InfinitePast();
    } else {
      failing_ = true;
      skip_until_ = now + options_.retry_interval;
      if (now - last_log_ >= absl::Seconds(10)) {
        last_log_ = now;
        log_error = true;
      }
    }
  }
  const char* mode = options_.on_redis_error == OnRedisError::kOpen
                         ? "admitting without shared limits (cluster.on_redis_error=open)"
                         : "refusing limited tenants (cluster.on_redis_error=closed)";
  if (log_error) {
    spdlog::warn("shared quotas: {} failed: {}; {} until Redis answers (logged at most every 10 s)",
                 what, std::string(st.message()), mode);
  }
  if (log_recovered) spdlog::info("shared quotas: Redis at {} answers again", client_->url().Redacted());
}

std::unique_ptr<admission::QuotaPermit> ClusterQuotas::NewPermit(
    const admission::Tenant& t, std::string id, std::unique_ptr<admission::QuotaPermit> local) {
  if (t.limits.concurrent_streams <= 0) id.clear();
  if (!id.empty()) {
    absl::MutexLock lock(&mu_);
    live_[t.name].insert(id);
  }
  return std::make_unique<ClusterPermit>(this, t.name, SharedLimits(t.limits), std::move(id),
                                         std::move(local));
}

absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> ClusterQuotas::Admit(
    const admission::Tenant& t, absl::Duration* retry_after) {
  const admission::Limits& l = t.limits;
  if (!HasLimits(l)) {
    return std::unique_ptr<admission::QuotaPermit>(std::make_unique<NoopPermit>());
  }
  if (SkippingRedis()) return WithoutRedis(t, "a recent Redis error", retry_after);
  std::string id = absl::StrCat(options_.gateway_id, ":", next_id_.fetch_add(1));
  absl::Status st = shared_.Admit(t.name, SharedLimits(l), id, retry_after);
  if (absl::IsUnavailable(st)) {
    NoteRedis(st, "admit");
    return WithoutRedis(t, std::string(st.message()), retry_after);
  }
  NoteRedis(absl::OkStatus(), "admit");
  if (!st.ok()) return st;  // RESOURCE_EXHAUSTED naming the limit, with its retry hint
  return NewPermit(t, std::move(id));
}

void ClusterQuotas::AdmitAsync(const admission::Tenant& t, AdmitDone done) {
  if (!HasLimits(t.limits) || SkippingRedis()) {
    done(Admit(t));  // no Redis call
    return;
  }
  admit_pool_.Schedule([this, &t, done = std::move(done)] { done(Admit(t)); });
}

absl::StatusOr<std::unique_ptr<admission::QuotaPermit>> ClusterQuotas::WithoutRedis(
    const admission::Tenant& t, const std::string& why, absl::Duration* retry_after) {
  if (options_.on_redis_error == OnRedisError::kClosed) {
    ++refused_without_redis_;
    return absl::UnavailableError(absl::StrCat(
        "tenant ", t.name, ": the shared quota store (Redis at ", client_->url().Redacted(),
        ") cannot be reached (", why,
        "); cluster.on_redis_error=closed refuses limited requests until it answers; retry"));
  }
  // Open: this gateway's own limits, over what it admits without Redis.
  auto local = local_.Admit(t, retry_after);
  if (!local.ok()) {
    absl::Status refused = local.status();
    absl::Status st(refused.code(),
                    absl::StrCat(refused.message(), " (enforced by this lmgate alone while the "
                                 "shared quota store is unreachable: cluster.on_redis_error=open)"));
    refused.ForEachPayload([&st](absl::string_view url, const absl::Cord& payload) {
      st.SetPayload(url, payload);
    });
    return st;
  }
  ++admitted_without_redis_;
  // Tracked like any permit: the first heartbeat that reaches Redis adds it there.
  return NewPermit(t, absl::StrCat(options_.gateway_id, ":", next_id_.fetch_add(1)),
                   *std::move(local));
}

void ClusterQuotas::Release(const std::string& tenant, const std::string& id) {
  {
    absl::MutexLock hb(&heartbeat_mu_);
    absl::MutexLock lock(&mu_);
    auto it = live_.find(tenant);
    if (it != live_.end()) {
      it->second.erase(id);
      if (it->second.empty()) live_.erase(it);
    }
  }
  if (SkippingRedis()) return;  // it lapses after 3 heartbeats
  absl::Status st = shared_.Release(tenant, id);
  NoteRedis(st, "release");
}

void ClusterQuotas::Charge(const std::string& tenant, const QuotaLimits& limits, int64_t tokens) {
  if (limits.tokens_per_minute <= 0 || tokens <= 0 || SkippingRedis()) return;
  NoteRedis(shared_.Charge(tenant, limits, tokens), "charge");
}

void ClusterQuotas::HeartbeatNow() {
  absl::MutexLock hb(&heartbeat_mu_);
  std::map<std::string, std::set<std::string>> live;
  {
    absl::MutexLock lock(&mu_);
    live = live_;
  }
  // While Redis is failing, one call probes it (the others would only time out too).
  for (const auto& [tenant, ids] : live) {
    auto added = shared_.Hold(tenant, std::vector<std::string>(ids.begin(), ids.end()));
    NoteRedis(added.status(), "renewing stream permits");
    if (!added.ok()) break;
    if (*added > 0) {
      spdlog::info("shared quotas: re-added {} running stream(s) of tenant {} that Redis had lost",
                   *added, tenant);
    }
  }
}

void ClusterQuotas::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.heartbeat)) HeartbeatNow();
}

}  // namespace lmgate::cluster
