#include "services/cluster/cluster_leases.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace lmgate::cluster {
namespace {

UnloadReason SharedReason(lifecycle::UnloadReason r) {
  switch (r) {
    case lifecycle::UnloadReason::kExpired:
      return UnloadReason::kExpired;
    case lifecycle::UnloadReason::kEvicted:
      return UnloadReason::kEvicted;
    case lifecycle::UnloadReason::kRequested:
      break;
  }
  return UnloadReason::kRequested;
}

const char* ReasonName(lifecycle::UnloadReason r) {
  switch (r) {
    case lifecycle::UnloadReason::kExpired:
      return "expiry";
    case lifecycle::UnloadReason::kEvicted:
      return "eviction";
    case lifecycle::UnloadReason::kRequested:
      break;
  }
  return "unload";
}

SharedLeasesOptions LeaseOptions(const ClusterLeasesOptions& o) {
  SharedLeasesOptions s;
  s.lease_ttl = 3 * o.heartbeat;
  return s;
}

}  // namespace

ClusterLeases::ClusterLeases(RedisClient* client, ClusterLeasesOptions options)
    : client_(client),
      options_(std::move(options)),
      force_channel_(absl::StrCat("lmgate:{", options_.ns, "}:force-unload")),
      shared_(client, options_.ns, options_.gateway_id, LeaseOptions(options_)) {
  thread_ = std::thread([this] { Loop(); });
  subscriber_ = std::make_unique<RedisSubscriber>(
      client_->url(), std::vector<std::string>{force_channel_},
      [this](const std::string&, const std::string& payload) { OnForceUnload(payload); });
}

ClusterLeases::~ClusterLeases() {
  subscriber_.reset();
  {
    absl::MutexLock lock(&kick_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool ClusterLeases::RedisUsable() const {
  absl::MutexLock lock(&health_mu_);
  return absl::Now() >= skip_until_;
}

bool ClusterLeases::Failed(const absl::Status& st, const char* what) const {
  const bool redis_error = !st.ok() && st.code() == absl::StatusCode::kUnavailable;
  bool log_error = false, log_recovered = false;
  {
    absl::MutexLock lock(&health_mu_);
    const absl::Time now = absl::Now();
    if (!redis_error) {
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
  if (redis_error) ++redis_errors_;
  if (log_error) {
    spdlog::warn("shared leases: {} failed: {}; leases are granted locally and every unload, "
                 "expiry and eviction is refused until Redis answers (logged at most every 10 s)",
                 what, std::string(st.message()));
  }
  if (log_recovered) spdlog::info("shared leases: Redis answers again");
  return redis_error;
}

// Granted locally and pushed to Redis by the heartbeat thread right after: the registry calls
// this under its lock on every request, so it never waits for Redis (a hung Redis would stall
// every tenant's inference for a command timeout). The price: another gateway that reserves the
// instance for an unload in the moment before the push does not see this lease, and the request
// then ends UNAVAILABLE as cut by an unload (retryable) instead of waiting for another instance.
absl::Status ClusterLeases::Acquire(const lifecycle::InstanceKey& inst, uint64_t id,
                                    lifecycle::LeaseHolder holder) {
  Live live{absl::StrCat(holder.holder, "#", id), false, holder.on_force_unload};
  if (!RedisUsable()) ++acquired_locally_;
  absl::Status st;
  {
    absl::MutexLock lock(&mu_);
    st = local_.Acquire(inst, id, std::move(holder));
    if (st.ok()) {
      live_[inst.identifier][id] = live;
      pending_.emplace_back(inst.identifier, id);
    }
  }
  if (st.ok()) {
    absl::MutexLock lock(&kick_mu_);
    kicked_ = true;
  }
  return st;
}

void ClusterLeases::Release(const lifecycle::InstanceKey& inst, uint64_t id, absl::Time now) {
  std::optional<Live> live;
  {
    absl::MutexLock lock(&mu_);
    local_.Release(inst, id, now);
    auto it = live_.find(inst.identifier);
    if (it != live_.end()) {
      if (auto l = it->second.find(id); l != it->second.end()) {
        live = l->second;
        it->second.erase(l);
      }
      if (it->second.empty()) live_.erase(it);
    }
  }
  // Not in Redis, or Redis skipped: nothing to drop there (a stale entry lapses after 3x the
  // heartbeat); the last use is then only local.
  if (live && live->in_redis && RedisUsable()) {
    Failed(shared_.Release(inst.identifier, live->name), "release");
  }
}

int ClusterLeases::Count(const lifecycle::InstanceKey& inst) const {
  absl::MutexLock lock(&mu_);
  return local_.Count(inst);
}

std::vector<std::string> ClusterLeases::Holders(const lifecycle::InstanceKey& inst) const {
  absl::MutexLock lock(&mu_);
  return local_.Holders(inst);
}

std::optional<absl::Time> ClusterLeases::LastUse(const lifecycle::InstanceKey& inst) const {
  absl::MutexLock lock(&mu_);
  return local_.LastUse(inst);
}

lifecycle::UnloadReservation ClusterLeases::ReserveUnload(const lifecycle::InstanceKey& inst,
                                                          lifecycle::UnloadReason reason,
                                                          bool force, absl::Duration idle_ttl,
                                                          absl::Time now) {
  lifecycle::UnloadReservation r;
  {
    absl::MutexLock lock(&mu_);
    r = local_.ReserveUnload(inst, reason, force, idle_ttl, now);
  }
  if (!r.granted) return r;  // this gateway's own holders (or last use) refuse it
  auto refuse = [&](std::string why) {
    absl::MutexLock lock(&mu_);
    local_.FinishUnload(inst, /*unloaded=*/false);
    lifecycle::UnloadReservation out;
    out.why = std::move(why);
    return out;
  };
  if (!RedisUsable()) {
    ++unloads_refused_;
    return refuse(absl::StrCat("the ", ReasonName(reason), " of ", inst.identifier,
                               " is refused: Redis (cluster.redis_url) cannot confirm that no "
                               "other lmgate holds a lease on it; retry when Redis answers"));
  }
  auto shared = shared_.ReserveUnload(inst.identifier, SharedReason(reason), force, idle_ttl);
  if (Failed(shared.status(), "reserve")) {
    ++unloads_refused_;
    return refuse(absl::StrCat("the ", ReasonName(reason), " of ", inst.identifier,
                               " is refused: Redis (cluster.redis_url) cannot confirm that no "
                               "other lmgate holds a lease on it (",
                               shared.status().message(), "); retry when Redis answers"));
  }
  if (!shared.ok()) return refuse(std::string(shared.status().message()));
  if (!shared->granted) {
    lifecycle::UnloadReservation out = refuse(
        shared->reserved_by.empty() ? ""
                                    : absl::StrCat("instance ", inst.identifier,
                                                   " is being unloaded by lmgate ",
                                                   shared->reserved_by));
    out.holders = shared->holders;
    out.last_use = shared->last_use;
    return out;
  }
  r.holders = shared->holders;  // every gateway's, this one's included
  const std::string mine = absl::StrCat(options_.gateway_id, "/");
  bool others = false;
  for (const std::string& h : r.holders) others = others || h.rfind(mine, 0) != 0;
  if (force && others) {
    // Their gateways end those streams; one that misses the notice sees the upstream unload.
    auto st = client_->Command(
        {"PUBLISH", force_channel_, absl::StrCat(inst.identifier, "\n", options_.gateway_id)});
    Failed(st.status(), "force-unload notice");
  }
  return r;
}

void ClusterLeases::FinishUnload(const lifecycle::InstanceKey& inst, bool unloaded) {
  {
    absl::MutexLock lock(&mu_);
    local_.FinishUnload(inst, unloaded);
    if (unloaded) live_.erase(inst.identifier);
  }
  // A reservation left behind (Redis unreachable now) expires after its reserve_ttl.
  Failed(shared_.FinishUnload(inst.identifier, unloaded), "finish unload");
}

ClusterLeases::Stats ClusterLeases::stats() const {
  return Stats{redis_errors_.load(), acquired_locally_.load(), unloads_refused_.load()};
}

bool ClusterLeases::PushLeases(const std::string& instance,
                               const std::map<uint64_t, Live>& leases, bool all) {
  for (const auto& [id, l] : leases) {
    if (l.in_redis && !all) continue;
    // Acquired since the last push, while Redis was unreachable, or lost by it (restart).
    const absl::Status st = shared_.Acquire(instance, l.name);
    if (Failed(st, "acquire")) return false;
    if (!st.ok()) continue;  // being unloaded elsewhere: it lapses or the unload ends it
    bool released = true;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = live_.find(instance); it != live_.end()) {
        if (auto ml = it->second.find(id); ml != it->second.end()) {
          ml->second.in_redis = true;
          released = false;
        }
      }
    }
    // Released meanwhile: its Release may have run before this push, so drop it again.
    if (released) (void)shared_.Release(instance, l.name);
  }
  return true;
}

void ClusterLeases::PushPending() {
  std::map<std::string, std::map<uint64_t, Live>> batch;
  const bool usable = RedisUsable();
  {
    absl::MutexLock lock(&mu_);
    if (usable) {
      for (const auto& [instance, id] : pending_) {
        auto it = live_.find(instance);
        if (it == live_.end()) continue;
        auto l = it->second.find(id);
        if (l != it->second.end() && !l->second.in_redis) batch[instance][id] = l->second;
      }
    }
    pending_.clear();  // what is not pushed now, the next heartbeat adds (every lease not there)
  }
  for (const auto& [instance, leases] : batch) {
    if (!PushLeases(instance, leases, /*all=*/false)) return;
  }
}

void ClusterLeases::HeartbeatNow() {
  std::map<std::string, std::map<uint64_t, Live>> live;
  {
    absl::MutexLock lock(&mu_);
    live = live_;
  }
  for (const auto& [instance, leases] : live) {
    std::vector<std::string> in_redis;
    for (const auto& [id, l] : leases) {
      if (l.in_redis) in_redis.push_back(l.name);
    }
    auto renewed = shared_.Renew(instance, in_redis);
    if (Failed(renewed.status(), "renew")) return;
    const bool lost = renewed.ok() && *renewed < static_cast<int64_t>(in_redis.size());
    if (!PushLeases(instance, leases, lost)) return;
  }
}

void ClusterLeases::OnForceUnload(const std::string& payload) {
  const size_t nl = payload.find('\n');
  if (nl == std::string::npos || payload.substr(nl + 1) == options_.gateway_id) return;
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(payload.substr(0, nl));
    if (it == live_.end()) return;
    for (const auto& [id, l] : it->second) {
      if (l.on_force_unload) hooks.push_back(l.on_force_unload);
    }
  }
  if (!hooks.empty()) {
    spdlog::warn("shared leases: instance {} force-unloaded by lmgate {}: ending {} request(s)",
                 payload.substr(0, nl), payload.substr(nl + 1), hooks.size());
  }
  for (auto& hook : hooks) hook();
}

void ClusterLeases::Loop() {
  absl::Time next_heartbeat = absl::Now() + options_.heartbeat;
  for (;;) {
    bool push = false;
    {
      absl::MutexLock lock(&kick_mu_);
      kick_mu_.AwaitWithDeadline(absl::Condition(this, &ClusterLeases::KickedOrStopping),
                                 next_heartbeat);
      if (stopping_) return;
      push = kicked_;
      kicked_ = false;
    }
    if (absl::Now() >= next_heartbeat) {
      HeartbeatNow();  // pushes the new leases too
      next_heartbeat = absl::Now() + options_.heartbeat;
    } else if (push) {
      PushPending();
    }
  }
}

}  // namespace lmgate::cluster
