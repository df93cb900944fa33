// OpenAI-style request bodies and answers, shared by the openai driver (/v1/...) and the rest
// driver (/api/v0/..., the same bodies plus a `stats` block). One builder, one parser.
//
// Stateless functions are thread-safe; a CompletionAccumulator is thread-compatible (one per
// prediction).
#ifndef LMGATE_BACKENDS_HTTP_OPENAI_WIRE_H_
#define LMGATE_BACKENDS_HTTP_OPENAI_WIRE_H_

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/types.h"

namespace lmgate::backends::http {

// The body of POST .../chat/completions (request.chat) or .../completions (!request.chat).
// Maps every Sampling field (LM Studio's extras top_k, min_p, repeat_penalty included), tools
// and tool_choice, `json_schema` as response_format {type:"json_schema"}; when `stream`, adds
// stream_options.include_usage. GenerateRequest::overflow has no field on these APIs: the
// selector never routes a request with one here (Capabilities::context_overflow_policy).
// INVALID_ARGUMENT for a missing model, tools on a text completion, or a tool schema /
// json_schema that is not a JSON object.
absl::StatusOr<std::string> BuildGenerateBody(const GenerateRequest& request, bool stream);

// Turns OpenAI-style completion chunks (streamed) or a whole completion object into
// GenerateEvents and a GenerateResult:
//   delta/message.content, choices[].text            -> kContent
//   delta/message.reasoning_content | .reasoning     -> kReasoning
//   delta/message.tool_calls[{index,id,function}]    -> kToolCallDelta, assembled by index
//   finish_reason, usage, stats (REST v0)            -> GenerateResult::stats
// An `{"error":...}` chunk fails the prediction (status.h's stream-error row).
class CompletionAccumulator {
 public:
  // `use_upstream_stats`: take LM Studio's `stats` block (TTFT, tokens/s, stop reason) when
  // present. `base_url`/`path` name the request in error messages.
  CompletionAccumulator(bool use_upstream_stats, std::string base_url, std::string path);

  // One SSE `data:` payload ("[DONE]" included). Appends the events it carries.
  absl::Status AddChunk(absl::string_view data, std::vector<GenerateEvent>* events);
  // A whole non-streamed answer body.
  absl::Status AddWhole(absl::string_view body, std::vector<GenerateEvent>* events);

  bool saw_done() const { return saw_done_; }          // "[DONE]" arrived
  bool saw_finish() const { return saw_finish_; }      // a finish_reason arrived
  bool saw_usage() const { return saw_usage_; }
  int deltas() const { return deltas_; }               // text/reasoning/tool pieces so far
  const GenerateResult& result() const { return result_; }
  GenerateResult TakeResult() { return std::move(result_); }

 private:
  absl::Status AddObject(const nlohmann::json& obj, bool whole,
                         std::vector<GenerateEvent>* events);

  const bool use_upstream_stats_;
  const std::string base_url_;
  const std::string path_;
  GenerateResult result_;
  bool saw_done_ = false;
  bool saw_finish_ = false;
  bool saw_usage_ = false;
  bool stop_from_stats_ = false;
  int deltas_ = 0;
};

// POST .../embeddings body: {"model", "input": [texts]}.
std::string BuildEmbeddingsBody(const std::string& model, const std::vector<std::string>& inputs);
// The embeddings answer, in input order (sorted by `index`). INTERNAL when it is malformed or
// holds a different number of vectors than `expected`.
absl::StatusOr<EmbedResult> ParseEmbeddingsResponse(absl::string_view body, size_t expected);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_OPENAI_WIRE_H_
