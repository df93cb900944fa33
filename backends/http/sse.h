// Incremental parser of Server-Sent Events (text/event-stream, WHATWG HTML §9.2.6), as LM Studio
// streams them: OpenAI-style `data:` chunks and REST v1's `event:` + `data:` pairs.
//
// Bytes may arrive split anywhere (inside a line, between CR and LF, inside a UTF-8 BOM).
// Handles LF, CRLF and CR line ends, `event:`/`data:`/`id:` fields (one optional space after the
// colon is dropped), multi-line data (joined with "\n"), comment lines (":..."), unknown fields
// (ignored) and a leading BOM. An event is dispatched at a blank line; events without data are
// dropped, as the spec says. Finish() is lenient where the spec is not: a last event that lacks
// its blank line is still dispatched.
//
// Thread-compatible: one parser per stream. Meant to be fuzzed: any input yields events or a
// status, never a crash or unbounded memory.
#ifndef LMGATE_BACKENDS_HTTP_SSE_H_
#define LMGATE_BACKENDS_HTTP_SSE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lmgate::backends::http {

struct SseEvent {
  std::string event;  // the `event:` field; "" when absent (the spec's "message")
  std::string data;   // `data:` lines joined with "\n"
  std::string id;     // the last `id:` seen on the stream so far
};

class SseParser {
 public:
  // Events (a line plus the data gathered for the current event) larger than this fail the
  // stream with RESOURCE_EXHAUSTED.
  static constexpr size_t kDefaultMaxEventBytes = 16 << 20;

  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`, appending every event completed by them to `out`. After an error the
  // parser stays failed and returns the same error.
  absl::Status Feed(absl::string_view bytes, std::vector<SseEvent>* out);
  // End of stream: dispatches a pending unterminated event (see file comment).
  absl::Status Finish(std::vector<SseEvent>* out);

 private:
  void EndLine(std::vector<SseEvent>* out);
  void Dispatch(std::vector<SseEvent>* out);

  const size_t max_event_bytes_;
  absl::Status error_;
  std::string line_;
  bool line_started_ = false;  // bytes of the current line were seen (line_ may still be empty)
  bool pending_cr_ = false;    // the last byte was CR: a following LF belongs to it
  bool first_line_ = true;     // strip a BOM from the first line
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string id_;
};

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_SSE_H_
