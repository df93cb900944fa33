// OpenAI's Responses API (POST /v1/responses) bodies and objects: the request body → a
// v1::ChatRequest (validated by services/convert like a gRPC Chat) plus the conversation fields,
// and lmgate's results → Response objects and the SSE events of a streamed one. Thread-safe
// (pure functions; ResponseStream is a value used by one call).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_RESPONSES_FORMAT_H_
#define LMGATE_SERVICES_HTTP_INGRESS_RESPONSES_FORMAT_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/types.h"
#include "lmgate/v1/inference.pb.h"
#include "services/conversations/context.h"
#include "services/conversations/store.h"

namespace lmgate::http_ingress {

struct ResponsesBody {
  // model, sampling (max_output_tokens, temperature, top_p), tools, tool_choice, and `input` as
  // messages (a string is one user message; items: messages with roles user, assistant, system,
  // developer (= system), function_call, function_call_output).
  v1::ChatRequest request;
  std::optional<std::string> instructions;
  std::string previous_response_id;
  bool store = true;  // OpenAI's default
  conversations::Truncation truncation = conversations::Truncation::kDisabled;
  bool stream = false;
  nlohmann::json metadata = nlohmann::json::object();
};

// Unknown fields and wrong types: INVALID_ARGUMENT naming the field (errors.h InvalidField).
absl::StatusOr<ResponsesBody> ParseResponsesBody(absl::string_view body, int max_json_depth);

// What a Response object shows.
struct ResponseView {
  std::string id;
  int64_t created_at = 0;
  std::string model;
  std::string status = "completed";  // in_progress | completed | incomplete | failed
  std::string instructions;          // "" = null
  std::string previous_response_id;  // "" = null
  bool store = true;
  conversations::Truncation truncation = conversations::Truncation::kDisabled;
  std::optional<int> max_output_tokens;
  nlohmann::json metadata = nlohmann::json::object();
  backends::GenerateResult result;  // output text, tool calls, usage
  nlohmann::json error;             // null, or {"code","message"} when failed
};

// The view of a request before its answer (status in_progress, no output).
ResponseView ViewOf(const ResponsesBody& body, std::string id, std::string model,
                    int64_t created_at);
// The view of a stored response (GET /v1/responses/{id}).
ResponseView ViewOf(const conversations::StoredResponse& stored);

nlohmann::json ResponseObject(const ResponseView& view);
std::string ResponseJson(const ResponseView& view);
std::string DeletedJson(const std::string& id);

// The SSE events of one streamed response, numbered in order ("event: T\ndata: {...}\n\n").
class ResponseStream {
 public:
  explicit ResponseStream(ResponseView view) : view_(std::move(view)) {}
  std::string Created();                        // response.created + response.in_progress
  std::string TextDelta(const std::string& t);  // (first: output_item/content_part added) delta
  // The output's done events, then response.completed (or .incomplete) with `final_view`.
  std::string Completed(const ResponseView& final_view);
  // response.failed with the error object (OpenAI's {"code","message"}).
  std::string Failed(const std::string& code, const std::string& message);

 private:
  std::string Event(const char* type, nlohmann::json data);
  ResponseView view_;
  int sequence_ = 0;
  bool text_started_ = false;
  std::string text_;
};

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_RESPONSES_FORMAT_H_
