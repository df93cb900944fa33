// The gRPC transport's limits (config "limits", deploy/CONFIG.md): what one client may make
// lmgate hold before any request is authenticated or validated.
#ifndef LMGATE_SERVICES_TRANSPORT_LIMITS_H_
#define LMGATE_SERVICES_TRANSPORT_LIMITS_H_

#include <cstdint>

#include "absl/time/time.h"

namespace lmgate::services {

struct TransportLimits {
  // Largest request message; a larger one gets RESOURCE_EXHAUSTED "Received message larger than
  // max (N vs. M)".
  int max_request_bytes = 4 << 20;
  // gRPC's memory quota for everything its transport holds (read buffers, messages being
  // received, call arenas). Beyond it gRPC cancels streams (RESOURCE_EXHAUSTED) and shrinks the
  // flow-control windows it advertises.
  int64_t server_memory_bytes = int64_t{32} << 20;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: streams one connection may have open at once.
  int max_concurrent_streams_per_connection = 1000;
  // Client connections open at once; beyond it a new connection is closed when accepted. Never
  // more than the fd limit allows (EffectiveMaxConnections in services/listener.h).
  int max_connections = 1024;
  // A connection that has not completed the TLS handshake and sent the HTTP/2 preface and
  // SETTINGS by then is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_TRANSPORT_LIMITS_H_
