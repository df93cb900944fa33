// OpenAI request bodies (chat/completions, completions, embeddings) → lmgate's API messages, so
// they take the same validation as gRPC calls (services/convert.h: sizes, ranges, JSON depth).
// Unknown fields, wrong types and what no lmgate driver can pass (logit_bias, n > 1, logprobs)
// are INVALID_ARGUMENT naming the field (errors.h InvalidField). Thread-safe (pure functions).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_OPENAI_REQUEST_H_
#define LMGATE_SERVICES_HTTP_INGRESS_OPENAI_REQUEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lmgate/v1/inference.pb.h"

namespace lmgate::http_ingress {

struct StreamOptions {
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct ChatBody {
  v1::ChatRequest request;
  StreamOptions stream;
};
struct CompletionBody {
  v1::CompleteRequest request;
  StreamOptions stream;
};
struct EmbeddingsBody {
  v1::EmbedRequest request;
  bool base64 = false;  // encoding_format "base64" (else "float")
};

// `max_json_depth` bounds the nesting of the body around its JSON fields (schemas, arguments),
// which convert.h then checks against the same limit field by field.
absl::StatusOr<ChatBody> ParseChatBody(absl::string_view body, int max_json_depth);
absl::StatusOr<CompletionBody> ParseCompletionBody(absl::string_view body, int max_json_depth);
absl::StatusOr<EmbeddingsBody> ParseEmbeddingsBody(absl::string_view body, int max_json_depth);

// A validation message of services/convert.cc in OpenAI's field names ("sampling.top_p" →
// "top_p", "structured_output.json_schema" → "response_format.json_schema.schema").
std::string OpenAiFieldNames(absl::string_view message);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_OPENAI_REQUEST_H_
