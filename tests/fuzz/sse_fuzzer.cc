// Fuzz target: the SSE reader (backends/http/sse.h). Bytes arrive split anywhere, so the input is
// fed whole and again in pieces whose sizes come from the input itself; both must give the same
// events and the same status (a parser that depends on where the network split the stream
// would corrupt tokens). A small event limit exercises RESOURCE_EXHAUSTED.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "backends/http/sse.h"

namespace {

using lmgate::backends::http::SseEvent;
using lmgate::backends::http::SseParser;

struct Outcome {
  std::vector<SseEvent> events;
  absl::Status status;
};

Outcome Parse(absl::string_view input, absl::string_view split_sizes) {
  SseParser parser(/*max_event_bytes=*/4096);
  Outcome o;
  size_t pos = 0, k = 0;
  while (pos < input.size() && o.status.ok()) {
    size_t n = input.size() - pos;
    if (!split_sizes.empty()) {
      n = std::min<size_t>(n, 1 + static_cast<uint8_t>(split_sizes[k++ % split_sizes.size()]) % 17);
    }
    o.status = parser.Feed(input.substr(pos, n), &o.events);
    pos += n;
  }
  if (o.status.ok()) o.status = parser.Finish(&o.events);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // The first bytes (up to 4) choose the split sizes; the whole input is the stream.
  const absl::string_view splits = input.substr(0, std::min<size_t>(4, input.size()));
  const Outcome whole = Parse(input, "");
  const Outcome pieces = Parse(input, splits);
  if (whole.status.code() != pieces.status.code() ||
      whole.events.size() != pieces.events.size()) {
    abort();
  }
  for (size_t i = 0; i < whole.events.size(); ++i) {
    if (whole.events[i].event != pieces.events[i].event ||
        whole.events[i].data != pieces.events[i].data ||
        whole.events[i].id != pieces.events[i].id) {
      abort();
    }
  }
  return 0;
}
