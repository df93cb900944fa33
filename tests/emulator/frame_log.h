// The emulator's frame log: what clients (lmgate) sent to the host, so tests can audit it — every
// SDK WebSocket frame received (and optionally every frame sent back), every WebSocket upgrade and
// every HTTP request outside /__emulator/, with the JSON, the namespace or path and selected
// headers (traceparent, tracestate, authorization with the secret redacted, user-agent,
// content-type). Entries are kept in memory, bounded by count and bytes (oldest dropped first),
// and with a path also appended to a file as JSON lines (the file is not bounded).
//
// Entry shape (one JSON object; absent keys are omitted):
//   {"seq":0,"time_ms":1795413390688,"direction":"in"|"out","transport":"ws"|"http",
//    "event":"open"|"frame"|"request","namespace":"llm","method":"POST","path":"/v1/models",
//    "query":"a=b","headers":{"traceparent":"00-…"},"json":{…},"text":"<not JSON>",
//    "bytes":123,"truncated":true}
// `json` is the parsed frame/body (an auth packet's clientPasskey is replaced by "<redacted>");
// a body that is not JSON is kept as `text`; one over 64 KiB keeps only its first 4 KiB as `text`
// with "truncated":true.
//
// Thread-safety: thread-safe.
#ifndef LMGATE_TESTS_EMULATOR_FRAME_LOG_H_
#define LMGATE_TESTS_EMULATOR_FRAME_LOG_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace lmgate::emulator {

// Request headers as received: (name in any case, value).
using Headers = std::vector<std::pair<std::string, std::string>>;

struct FrameLogOptions {
  size_t max_entries = 10000;          // in memory; 0 = keep nothing in memory
  size_t max_bytes = 64 * 1024 * 1024; // in memory, approximate (raw frame/body sizes)
  std::string path;                    // "" = no file; else JSON lines appended
  bool log_outgoing = false;           // also the SDK frames the emulator sends ("out")
};

class FrameLog {
 public:
  // Fails when `path` cannot be opened for appending.
  static absl::StatusOr<std::unique_ptr<FrameLog>> Create(FrameLogOptions options);
  ~FrameLog();
  FrameLog(const FrameLog&) = delete;
  FrameLog& operator=(const FrameLog&) = delete;

  bool log_outgoing() const { return options_.log_outgoing; }

  void RecordWsOpen(const std::string& ns, const Headers& headers);
  void RecordWsFrame(bool incoming, const std::string& ns, const std::string& text);
  void RecordHttpRequest(const std::string& method, const std::string& target,
                         const Headers& headers, const std::string& body);

  // The entries still in memory, oldest first.
  std::vector<nlohmann::json> Frames() const;
  // Entries dropped from memory by the bounds since the start (or the last Clear()).
  int64_t dropped() const;
  void Clear();

 private:
  explicit FrameLog(FrameLogOptions options) : options_(std::move(options)) {}
  void Append(nlohmann::json entry, size_t raw_bytes);

  const FrameLogOptions options_;
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  mutable absl::Mutex mu_;
  std::unique_ptr<std::FILE, FileCloser> file_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<nlohmann::json, size_t>> entries_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

// "Bearer sk-lm-AbCd1234:<redacted>" for an LM Studio token (the identifier part is not secret),
// "<scheme> <redacted>" otherwise, "" for "".
std::string RedactAuthorization(const std::string& value);

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_FRAME_LOG_H_
