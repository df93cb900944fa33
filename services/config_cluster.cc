// The `cluster` section of the config file (several lmgates on one host, issue 14).
#include "absl/strings/str_cat.h"
#include "services/cluster/redis.h"
#include "services/config_internal.h"

namespace lmgate::services::config_internal {

absl::Status ParseCluster(const json& j, cluster::ClusterOptions* out) {
  if (auto st = CheckKeys(j, "cluster",
                          {"redis_url", "redis_password_env", "on_redis_error",
                           "command_timeout_seconds", "heartbeat_seconds"});
      !st.ok())
    return st;
  absl::Status st;
  if (j.contains("redis_url") &&
      !(st = Read(j["redis_url"], "cluster.redis_url", &out->redis_url)).ok())
    return st;
  if (j.contains("redis_password_env") &&
      !(st = Read(j["redis_password_env"], "cluster.redis_password_env",
                  &out->redis_password_env))
           .ok())
    return st;
  if (j.contains("on_redis_error")) {
    std::string v;
    if (!(st = Read(j["on_redis_error"], "cluster.on_redis_error", &v)).ok()) return st;
    if (v == "open") {
      out->on_redis_error = cluster::OnRedisError::kOpen;
    } else if (v == "closed") {
      out->on_redis_error = cluster::OnRedisError::kClosed;
    } else {
      return Bad("cluster.on_redis_error",
                 absl::StrCat("must be \"open\" (admit) or \"closed\" (refuse), not \"", v,
                              "\""));
    }
  }
  if (j.contains("command_timeout_seconds") &&
      !(st = ReadSeconds(j["command_timeout_seconds"], "cluster.command_timeout_seconds",
                         &out->command_timeout))
           .ok())
    return st;
  if (j.contains("heartbeat_seconds") &&
      !(st = ReadSeconds(j["heartbeat_seconds"], "cluster.heartbeat_seconds", &out->heartbeat))
           .ok())
    return st;
  return absl::OkStatus();
}

absl::Status ValidateCluster(const cluster::ClusterOptions& c) {
  if (c.enabled()) {
    auto url = cluster::ParseRedisUrl(c.redis_url, c.redis_password_env);
    // ParseRedisUrl's messages name the key (cluster.redis_url or cluster.redis_password_env).
    if (!url.ok()) return absl::InvalidArgumentError(absl::StrCat("config: ", url.status().message()));
    if (c.command_timeout <= absl::ZeroDuration() || c.command_timeout > absl::Seconds(10)) {
      return Bad("cluster.command_timeout_seconds", "must be > 0 and <= 10");
    }
    if (c.heartbeat < absl::Milliseconds(10) || c.heartbeat > absl::Minutes(5)) {
      return Bad("cluster.heartbeat_seconds", "must be 0.01..300");
    }
  } else if (!c.redis_password_env.empty()) {
    return Bad("cluster.redis_password_env", "set without cluster.redis_url");
  }
  return absl::OkStatus();
}

}  // namespace lmgate::services::config_internal
