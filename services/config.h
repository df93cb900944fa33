// lmgate's configuration: a JSON file (--config) overlaid by command-line flags. Every option,
// its default and its meaning are listed in deploy/CONFIG.md; `lmgate --check_config` validates a
// file and exits.
#ifndef LMGATE_SERVICES_CONFIG_H_
#define LMGATE_SERVICES_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/registry.h"
#include "services/admission/identity.h"
#include "services/cluster/options.h"
#include "services/conversations/store.h"
#include "services/gateway/gateway.h"
#include "services/transport_limits.h"

namespace lmgate::services {

struct Config {
  std::string listen = "127.0.0.1:50051";
  backends::HostConfig host;
  // The environment variable host.api_token came from ("" = the file's api_token, or none); shown
  // by ConfigToJson instead of the token.
  std::string api_token_env;
  // Enabled drivers, in fallback order for AUTO when prefer_configured_order is set.
  std::vector<std::string> drivers = {"sdk_ws", "rest", "openai", "cli"};
  bool prefer_configured_order = false;
  gateway::GatewayOptions gateway;
  int worker_threads = 32;
  // SIGTERM/SIGINT: stop accepting, let calls finish for this long, then cancel them.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // SIGTERM/SIGINT, before the grace: readiness NOT_SERVING while lmgate keeps serving this long
  // (load balancers and the kubelet stop sending first).
  absl::Duration drain_delay = absl::ZeroDuration();
  // Readiness waits until every keep_loaded model has a READY instance.
  bool ready_requires_pinned = false;
  std::string log_level = "info";
  // Every stdout line as text (spdlog's pattern; records as key=value) or one JSON object.
  std::string log_format = "text";
  // API keys and client-address allowlist (empty = no keys: loopback only unless `insecure`).
  admission::IdentityOptions identity;
  // TLS for the gRPC port; cert_file empty = plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  bool tls_require_client_cert = false;
  // Prometheus endpoint; empty = off. It serves this many connections at once, each for at most
  // metrics_timeout (reading the request, writing the answer, or idle between keep-alive requests).
  std::string metrics_listen = "127.0.0.1:9464";
  int metrics_max_connections = 16;
  absl::Duration metrics_timeout = absl::Seconds(10);
  // A Chat/Complete client that does not read: its generation is cancelled once a write has been
  // stalled this long or this many bytes wait behind it (0 = no bound). `limits.*` in the file.
  absl::Duration stream_write_stall = absl::Seconds(30);
  size_t stream_max_pending_bytes = size_t{1} << 20;
  // Allow listening on a non-loopback address without API keys.
  bool insecure = false;
  // The gRPC transport's limits ("limits" object).
  TransportLimits limits;
  // Several lmgates on one host sharing state through Redis ("cluster" object; off by default).
  cluster::ClusterOptions cluster;
  // Stored conversations (previous_response_id): TTL and bounds ("conversations" object).
  conversations::StoreOptions conversations;
  // OpenAI-compatible HTTP ingress (services/http_ingress); empty = off.
  std::string http_listen;
  // Its limits ("http" object). A stalled reader is bounded by stream_write_stall and
  // stream_max_pending_bytes above, as a gRPC stream is.
  struct Http {
    int threads = 2;
    int64_t max_body_bytes = int64_t{4} << 20;
    int max_header_bytes = 16 << 10;
    int max_headers = 100;
    int max_connections = 256;
    absl::Duration idle_timeout = absl::Seconds(60);
    absl::Duration read_timeout = absl::Seconds(10);
  } http;
};

// Parses a JSON config document. Unknown keys are errors (INVALID_ARGUMENT naming the key), so a
// typo never silently falls back to a default; so are a syntax error ("config:LINE:COLUMN: ..."),
// a key given twice in one object ("duplicate key "k" at line L") and a negative count.
absl::StatusOr<Config> ParseConfig(const std::string& json_text);
// The same for a file; errors start with `path` ("lmgate.json:3:8: ...").
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Whether a `listen` host:port serves loopback only: a numeric address in 127.0.0.0/8, ::1
// ([::1]), ::ffff:127.x.x.x, or `localhost`. Any other name counts as not loopback (it may resolve
// anywhere), so it needs keys or `insecure`.
bool IsLoopbackListen(const std::string& listen);

// What ConfigToJson prints instead of a secret.
inline constexpr char kRedacted[] = "<redacted>";

// The effective config as the JSON document ParseConfig reads (every key, pretty-printed, ending
// in a newline), for `lmgate --check_config`. Secrets are never printed: the LM Studio token
// shows as its environment variable's name or kRedacted; keys show as their digest, key_env or
// key_file name (Config never holds a key itself).
std::string ConfigToJson(const Config& config);

// Semantic checks (listen and metrics_listen are host:port, URL, known drivers, positive
// durations and counts in range; cluster.redis_url parses, is not rediss://, and its password
// variable is set).
absl::Status ValidateConfig(const Config& config, const std::vector<std::string>& known_drivers);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_CONFIG_H_
