// Runtime knobs (Settings) and fault injection (Faults) of the emulator, with the JSON shapes used
// by the command line, the C++ API and the HTTP control endpoints (POST /__emulator/settings,
// POST /__emulator/faults).
//
// Thread-safety: plain values; the Host keeps the live copies under its mutex.
#ifndef LMGATE_TESTS_EMULATOR_CONTROL_H_
#define LMGATE_TESTS_EMULATOR_CONTROL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace lmgate::emulator {

// Behaviour knobs. JSON keys are the field names.
struct Settings {
  int64_t ttft_ms = 20;             // time to first token (prompt processing)
  double tokens_per_second = 200;   // 0 = as fast as possible
  double load_ms_per_gb = 20;       // a 2.5 GB model loads in ~50 ms
  int load_progress_steps = 4;      // progress packets per load (0.25, 0.5, 0.75, 1)
  bool jit_enabled = true;          // HTTP inference may load unloaded models
  bool auto_evict = true;           // at most one JIT-loaded model
  int64_t jit_default_ttl_ms = 3600000;  // idle TTL of JIT loads without a `ttl` (60 min)
  int default_parallel = 4;         // slots per instance unless llm.load.numParallelSessions
  int min_response_tokens = 16;     // natural response length range (content tokens)
  int max_response_tokens = 48;
  // Host fidelity (what the real LM Studio does, where the emulator used to be simpler).
  // GET /api/v0/models lists every loaded instance whose identifier is not its model key (a
  // custom `--identifier`, or `key:2`) as a row of its own (id = identifier, state loaded); the
  // model key's row is then "loaded" only while an instance named by the key is. Off by default:
  // it changes the rows existing tests read.
  bool v0_identifier_rows = false;
  // repository/lmLinkStatus answers like a host without LM Link (status "offline", issue
  // "notLoggedIn", no peers, deviceIdentifier null); false = rpcError like a host before LM Link.
  // On by default: the real host always serves it, and the real `lms` calls it first.
  bool lm_link_status = true;
  // Like host versions that leave the default out: a load that did not set
  // llm.load.numParallelSessions has none in getLoadConfig, and no `parallel` in /api/v1/models
  // `loaded_instances[].config` or the /api/v1/models/load `load_config`; the instance still has
  // `default_parallel` slots. Clients then apply the SDK's default (4) themselves.
  bool omit_default_parallel = false;

  nlohmann::json ToJson() const;
  // Partial update: only the keys present are changed. Unknown keys → InvalidArgument.
  absl::Status Apply(const nlohmann::json& update);
};

// Fault injection. One-shot faults are consumed by the requests they hit.
struct Faults {
  // The next prediction (any interface) severs its connection after this many fragments
  // (WebSocket: the socket is closed without a close frame; HTTP: the TCP connection is closed).
  // -1 = off. One-shot.
  int drop_after_fragments = -1;
  // The next `http_error_count` inference/model HTTP requests (OpenAI, REST v0/v1) get
  // `http_error_status` with an LM Studio-style error body.
  int http_error_count = 0;
  int http_error_status = 503;
  // The next prediction stops sending after `stall_after_fragments` fragments for `stall_ms`
  // (<0: until cancelled), then continues. -1 = off. One-shot.
  int stall_after_fragments = -1;
  int64_t stall_ms = 0;
  // Multiplies every load time (slow loads). Persistent.
  double load_time_multiplier = 1.0;
  // JIT window: for this long after a load or unload of a model starts, HTTP inference requests
  // naming that model fail at once with `jit_window_status` (404, as users saw) instead of waiting.
  // 0 = off. Persistent.
  int64_t jit_window_ms = 0;
  int jit_window_status = 404;
  // The next N loads fail half-way (channelError / HTTP 500). One-shot per load.
  int fail_next_loads = 0;

  nlohmann::json ToJson() const;
  // Partial update. Accepts the flat keys above and the grouped forms
  // {"http_error":{"count","status"}}, {"stall":{"after_fragments","ms"}} and {"clear":true}
  // (reset everything first). `refuse_connections_ms` is ignored here (the server acts on it).
  absl::Status Apply(const nlohmann::json& update);
};

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_CONTROL_H_
