// The `cluster` config section: how several lmgates in front of one LM Studio host share state
// through Redis (issue 14). Without `redis_url` lmgate keeps its state in-process, as one gateway.
#ifndef LMGATE_SERVICES_CLUSTER_OPTIONS_H_
#define LMGATE_SERVICES_CLUSTER_OPTIONS_H_

#include <string>

#include "absl/time/time.h"

namespace lmgate::cluster {

// What a shared-state call does when Redis cannot answer (down, unreachable, timed out).
enum class OnRedisError {
  kOpen,    // admit as if the shared limit allowed it (availability first)
  kClosed,  // refuse with UNAVAILABLE naming Redis (limits first)
};

struct ClusterOptions {
  // redis://[[user]:password@]host[:port][/db]; "" = embedded mode (no sharing).
  std::string redis_url;
  // Environment variable holding the Redis password ("" = none, or the one in the URL).
  std::string redis_password_env;
  OnRedisError on_redis_error = OnRedisError::kOpen;
  // Bound of one Redis command (and of connecting); an inference request waits at most this long
  // for its quota when Redis hangs, and not at all for a short while after a failure.
  absl::Duration command_timeout = absl::Milliseconds(250);
  // How often a gateway renews its stream permits; a permit not renewed for 3× this lapses (a
  // killed gateway's streams stop counting after at most that long).
  absl::Duration heartbeat = absl::Seconds(5);

  bool enabled() const { return !redis_url.empty(); }
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_OPTIONS_H_
