// Private to model_host.cc / prediction.cc: the instance record behind an InstanceHandle.
#ifndef LMGATE_TESTS_EMULATOR_MODEL_HOST_INTERNAL_H_
#define LMGATE_TESTS_EMULATOR_MODEL_HOST_INTERNAL_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/emulator/catalogue.h"
#include "tests/emulator/kv_config.h"
#include "tests/emulator/model_host.h"

namespace lmgate::emulator {

// Every field is guarded by Host::mu_ (spec is immutable).
struct Instance {
  enum class State { kLoading, kLoaded, kFailed, kGone };

  const ModelSpec* spec = nullptr;
  std::string identifier;
  std::string reference;  // instanceReference: opaque, unique per load
  std::optional<int64_t> ttl_ms;
  std::optional<int64_t> last_used_ms;  // epoch ms of the last request; null until first use
  absl::Time idle_since;                // TTL counts from here while nothing runs
  int64_t context_length = 0;
  int parallel = 4;
  KvConfig load_config;
  bool jit = false;
  State state = State::kLoading;
  int progress_step = 0;   // loader progress: progress_step / progress_steps
  int progress_steps = 1;
  std::string failure;  // why a load failed / was cancelled
  int active = 0;       // predictions holding a slot
  int prompt_phase = 0; // ...of which still processing the prompt
  std::deque<uint64_t> queue;  // FIFO tickets waiting for a slot

  bool busy() const { return active > 0 || !queue.empty(); }
};

inline int64_t EpochMs(absl::Time t) { return absl::ToUnixMillis(t); }

// Attaches the HTTP status (and LM Studio error code, if any) the HTTP layer should answer with.
inline absl::Status HttpError(absl::Status s, int http_status, const std::string& code) {
  s = WithPayload(std::move(s), kPayloadHttpStatus, std::to_string(http_status));
  if (!code.empty()) s = WithPayload(std::move(s), kPayloadErrorCode, code);
  return s;
}

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_MODEL_HOST_INTERNAL_H_
