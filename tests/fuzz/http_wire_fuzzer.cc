// Fuzz target: what the HTTP drivers decode from LM Studio's answers — OpenAI-style completions
// (streamed chunks and whole bodies, backends/http/openai_wire.h), embeddings, and the REST
// model lists and load answer (backends/rest/rest_wire.h).
//
// Input: one control byte, then a body. Bit 0: use the host's `stats` block; bits 1-2: how many
// embeddings were asked for (1..4). Every decoder runs on the body; the streaming accumulator
// gets it line by line (an optional "data:" prefix dropped), as the SSE reader would hand it over.
// Seeds start with '1' (stats on, one embedding).
//
// Checks, besides no crash / throw / sanitizer report: a successful embeddings answer holds
// exactly the vectors asked for; tool calls stay within the 1025 indexes the accumulator allows;
// model lists name their models and instances.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "backends/http/openai_wire.h"
#include "backends/rest/rest_wire.h"

namespace http = lmgate::backends::http;
namespace rest = lmgate::backends::rest;
using lmgate::backends::GenerateEvent;
using lmgate::backends::HostModels;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "http_wire_fuzzer: invariant violated: %s\n", what);
  std::abort();
}

void CheckAccumulator(const http::CompletionAccumulator& acc,
                      const std::vector<GenerateEvent>& events) {
  Check(acc.result().tool_calls.size() <= 1025, "too many tool calls");
  for (const GenerateEvent& e : events) {
    if (e.kind == GenerateEvent::Kind::kToolCallDelta) {
      Check(e.tool_index >= 0 && e.tool_index <= 1024, "tool index out of range");
    }
  }
}

void CheckModels(const HostModels& m) {
  for (const auto& d : m.downloaded) Check(!d.key.empty(), "downloaded model without key");
  for (const auto& i : m.loaded) Check(!i.identifier.empty(), "instance without identifier");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool upstream_stats = (data[0] & 1) != 0;
  const size_t expected = 1 + ((data[0] >> 1) & 3);
  const absl::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  // A whole (non-streamed) completion.
  {
    http::CompletionAccumulator acc(upstream_stats, "http://fuzz:1234", "/v1/chat/completions");
    std::vector<GenerateEvent> events;
    (void)acc.AddWhole(body, &events);
    CheckAccumulator(acc, events);
    (void)acc.TakeResult();
  }
  // The same bytes as a stream of SSE data payloads, one per line.
  {
    http::CompletionAccumulator acc(upstream_stats, "http://fuzz:1234", "/v1/completions");
    std::vector<GenerateEvent> events;
    for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
      absl::ConsumePrefix(&line, "data:");
      absl::ConsumePrefix(&line, " ");
      if (!acc.AddChunk(line, &events).ok()) break;
    }
    CheckAccumulator(acc, events);
  }
  // Embeddings.
  if (auto e = http::ParseEmbeddingsResponse(body, expected); e.ok()) {
    Check(e->embeddings.size() == expected, "wrong number of embeddings");
  }
  // REST model lists, merged, and the load answer.
  auto v0 = rest::ParseV0Models(body);
  auto v1 = rest::ParseV1Models(body);
  if (v0.ok()) CheckModels(*v0);
  if (v1.ok()) CheckModels(*v1);
  CheckModels(rest::MergeModels(v0.ok() ? *v0 : HostModels(), v1.ok() ? *v1 : HostModels()));
  lmgate::backends::LoadParams params;
  params.model_key = "qwen/qwen3-4b";
  if (auto inst = rest::ParseLoadResponse(body, params); inst.ok()) {
    Check(!inst->identifier.empty(), "load answer without instance id");
  }
  (void)rest::QuantizationBits(body.substr(0, 64));
  return 0;
}
