// lmgate's results → OpenAI response bodies and SSE chunks (chat.completion, text_completion,
// list/model, embeddings). Thread-safe (pure functions; StreamFormat is a value).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_OPENAI_RESPONSE_H_
#define LMGATE_SERVICES_HTTP_INGRESS_OPENAI_RESPONSE_H_

#include <string>
#include <vector>

#include "backends/types.h"
#include "services/gateway/gateway.h"
#include "services/lifecycle/registry.h"

namespace lmgate::http_ingress {

// "stop", "length" or "tool_calls".
const char* FinishReason(const backends::GenerateResult& result);

// Identity of one answer: "chatcmpl-<request id>" / "cmpl-<request id>", the model, `created`.
struct AnswerId {
  bool chat = true;
  std::string id;
  std::string model;
  int64_t created = 0;
};

std::string CompletionJson(const AnswerId& a, const gateway::GenerateOutcome& outcome);

// One SSE `data:` event per call (each ends in a blank line).
class StreamFormat {
 public:
  explicit StreamFormat(AnswerId a) : a_(std::move(a)) {}
  std::string Event(const backends::GenerateEvent& e);  // "" for events OpenAI has no field for
  std::string Finish(const backends::GenerateResult& result);
  std::string Usage(const backends::GenerateStats& stats);
  static std::string Done() { return "data: [DONE]\n\n"; }
  // An SSE comment (": loading 40%"): keeps clients and proxies from timing out.
  static std::string Comment(const std::string& text) { return ": " + text + "\n\n"; }
  // The failure of a stream that already started: `event: error` with the error object.
  static std::string Error(const std::string& error_json);

 private:
  AnswerId a_;
  bool role_sent_ = false;
};

std::string ModelJson(const lifecycle::ModelSnapshot& m);
std::string ModelListJson(const std::vector<const lifecycle::ModelSnapshot*>& models);
std::string EmbeddingsJson(const backends::EmbedResult& result, const std::string& model,
                           bool base64);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_OPENAI_RESPONSE_H_
