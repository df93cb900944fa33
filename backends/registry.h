// BackendRegistry: named driver factories ("sdk_ws", "rest", "openai", "cli"), registered
// explicitly (RegisterBuiltinBackends() in backends/builtin.h), never by static initialisers.
// Tests register fakes under their own names.
#ifndef LMGATE_BACKENDS_REGISTRY_H_
#define LMGATE_BACKENDS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/driver.h"

namespace lmgate::backends {

// How to reach the LM Studio host; shared by every driver.
struct HostConfig {
  // Base URL of the host, e.g. "http://127.0.0.1:1234". Paths such as /v1, /api/v0, /api/v1
  // and a trailing slash are accepted and stripped (http/url.h).
  std::string base_url = "http://127.0.0.1:1234";
  // LM Studio API token ("sk-lm-XXXXXXXX:YYYYYYYYYYYYYYYYYYYY"); empty = no auth.
  std::string api_token;
  absl::Duration connect_timeout = absl::Seconds(3);
  // Upper bound of a unary call that has no deadline of its own (model loads use load_timeout).
  absl::Duration request_timeout = absl::Seconds(60);
  absl::Duration load_timeout = absl::Minutes(10);
  // A streamed response with no byte for this long fails with UNAVAILABLE.
  absl::Duration idle_timeout = absl::Seconds(120);
  // Retries of idempotent calls on connection failure / 5xx (never after a stream started).
  int max_retries = 2;
  // Path of the `lms` executable for the CLI driver ("lms" = look up PATH).
  std::string lms_path = "lms";
};

using DriverFactory =
    std::function<absl::StatusOr<std::unique_ptr<Driver>>(const HostConfig& config)>;

// Thread-compatible: register everything at start-up, then only call Create/Names.
class BackendRegistry {
 public:
  // ALREADY_EXISTS if `name` is taken.
  absl::Status Register(const std::string& name, DriverFactory factory);
  // NOT_FOUND listing the known names if `name` is unknown.
  absl::StatusOr<std::unique_ptr<Driver>> Create(const std::string& name,
                                                 const HostConfig& config) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, DriverFactory> factories_;
};

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_REGISTRY_H_
