// lmgate's LM Studio host emulator: every LM Studio client interface on one port (SDK WebSocket
// namespaces, OpenAI-compatible /v1, REST /api/v0 and /api/v1, discovery probes), deterministic
// models, realistic lifecycle (JIT, TTL, auto-evict, instances, parallel slots) and fault
// injection. Tests in the same process start it on port 0 and read its counters directly;
// out-of-process users run //tests/emulator:lmstudio_emulator and use /__emulator/* over HTTP.
//
// Lifetime: Create() returns a running emulator (its own I/O and worker threads). Shutdown() (or
// the destructor) stops it; it is idempotent and must not be called from a callback of the
// emulator itself.
// Thread-safety: every method is thread-safe.
#ifndef LMGATE_TESTS_EMULATOR_EMULATOR_H_
#define LMGATE_TESTS_EMULATOR_EMULATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/control.h"
#include "tests/emulator/frame_log.h"

namespace lmgate::emulator {

class Host;
class HttpApi;
class SdkAuthenticator;
class Server;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;                // 0 = pick a free port (see port())
  std::string catalogue_json;  // path of a catalogue JSON file; empty = built-in catalogue
  Settings settings;           // timing, JIT, TTL, slots (control.h)
  Faults faults;               // faults armed from the start (control.h)
  // "sk-lm-<8 alnum>:<20 alnum>": HTTP needs "Authorization: Bearer <token>", the WebSocket
  // handshake the split identifier/passkey. Empty = no authentication.
  std::string api_token;
  int io_threads = 2;
  std::string lmstudio_version = "0.4.0";  // reported by system/version and /lms-status
  // Frame log (frame_log.h): in memory always, bounded; with a path also appended as JSON lines
  // (--log_frames=FILE).
  FrameLogOptions frame_log;
};

class Emulator {
 public:
  static absl::StatusOr<std::unique_ptr<Emulator>> Create(Options options);
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  int port() const;
  std::string http_url() const;  // "http://127.0.0.1:PORT"
  std::string ws_url() const;    // "ws://127.0.0.1:PORT" (SDK baseUrl)

  // Counters and loaded instances; the same JSON as GET /__emulator/stats.
  nlohmann::json Stats() const;
  // Zeroes the counters (gauges such as predictions_active are kept), like POST /__emulator/reset.
  void ResetStats();

  // Knobs, applied to requests that start afterwards.
  Settings settings() const;
  void SetSettings(const Settings& settings);
  absl::Status ApplySettings(const nlohmann::json& update);  // POST /__emulator/settings shape

  // Faults (see control.h for semantics).
  Faults faults() const;
  void SetFaults(const Faults& faults);
  absl::Status ApplyFaults(const nlohmann::json& update);  // POST /__emulator/faults shape
  void DropAfterFragments(int fragments);
  void FailNextHttpRequests(int count, int status = 503);
  void StallNextPrediction(int after_fragments, int64_t stall_ms);  // stall_ms < 0: until cancel
  void SetLoadTimeMultiplier(double multiplier);
  void SetJitWindow(int64_t window_ms, int status = 404);
  void FailNextLoads(int count);
  // Closes the listener for `ms` ms (connections refused), then listens again on the same port.
  void RefuseConnections(int64_t ms, bool drop_existing_connections = false);

  // Direct lifecycle control for test set-up (blocking; same effect as an SDK load/unload).
  absl::StatusOr<std::string> Load(const std::string& model_key,
                                   std::optional<std::string> identifier = std::nullopt,
                                   std::optional<int64_t> ttl_ms = std::nullopt,
                                   int64_t context_length = 0, int parallel = 0);
  absl::Status Unload(const std::string& identifier);

  // What clients sent, oldest first (frame_log.h has the entry shape); the same as
  // GET /__emulator/frames. ClearFrames() forgets them (the file, if any, keeps them).
  std::vector<nlohmann::json> Frames() const;
  void ClearFrames();

  void Shutdown();

  Host& host();  // for white-box tests

 private:
  Emulator() = default;

  Options options_;
  std::unique_ptr<FrameLog> frames_;  // destroyed after everything that records into it
  std::unique_ptr<Host> host_;  // destroyed after the sessions: they call into it while torn down
  std::unique_ptr<SdkAuthenticator> auth_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<Server> server_;
};

// Checks "sk-lm-<8 alnum>:<20 alnum>".
bool IsValidApiToken(const std::string& token);

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_EMULATOR_H_
