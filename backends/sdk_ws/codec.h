// Endpoint payloads of the SDK protocol (shared/reference/lmstudio-protocol.md §1.4-1.9): model
// listings, load/unload, predict/completeRawText creation parameters with their KV config
// stacks, embeddings and tokenizer results.
//
// Pure functions over lmgate's plain types (backends/types.h); no I/O. Encoders send the keys
// @lmstudio/sdk 2.0.0 sends. Decoders accept any JSON and never throw: missing fields take
// defaults, and only structurally wrong results (not an array where one is required) are errors.
#ifndef LMGATE_BACKENDS_SDK_WS_CODEC_H_
#define LMGATE_BACKENDS_SDK_WS_CODEC_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/sdk_ws/protocol.h"
#include "backends/types.h"

namespace lmgate::backends::sdk_ws {

// --- Models ----------------------------------------------------------------------------------

ModelType ParseModelType(absl::string_view type);  // "llm" | "embedding" | other → kUnknown
ModelInfo DecodeModelInfo(const Json& info);
InstanceInfo DecodeInstanceInfo(const Json& info);
// INTERNAL if `result` is not an array; malformed elements are skipped.
absl::StatusOr<std::vector<ModelInfo>> DecodeModelList(const Json& result);
absl::StatusOr<std::vector<InstanceInfo>> DecodeInstanceList(const Json& result);

// --- Model specifiers ------------------------------------------------------------------------

// {"type":"query","query":{"identifier":...}}
Json QuerySpecifier(absl::string_view identifier);
// {"type":"instanceReference","instanceReference":...}
Json InstanceReferenceSpecifier(absl::string_view reference);

// --- Load / unload ---------------------------------------------------------------------------

// KVConfig stack with one "apiOverride" layer holding `fields` ([{key,value}...]).
Json ConfigStack(Json fields);

// The `loadModel` creationParameter for a model of `type` (kEmbedding uses the embedding.load.*
// keys; anything else the llm.load.* keys). INVALID_ARGUMENT for an empty key or out-of-range
// values. Load options that do not apply to embedding models are not sent for them.
absl::StatusOr<Json> EncodeLoadModel(const LoadParams& params, ModelType type);

// The slot count in a getLoadConfig result ({"fields":[{key,value}...]}): the value of
// llm.load.numParallelSessions, or kDefaultParallelSlots when the host leaves it out (as the SDK
// reads it); nullopt when the result is not a config or the value is no integer in 1..INT32_MAX.
std::optional<int> DecodeParallelSlots(const Json& load_config);

// One `loadModel` channel message.
struct LoadMessage {
  enum class Kind { kResolved, kProgress, kSuccess, kOther };
  Kind kind = Kind::kOther;
  double progress = 0;  // kProgress, clamped to 0..1
  InstanceInfo info;    // kSuccess
  ModelType resolved_type = ModelType::kUnknown;  // kResolved
};
LoadMessage DecodeLoadMessage(const Json& message);

// {"identifier":...,"deviceIdentifier":null} (the local host), as SDK 2.0.0 sends it.
Json EncodeUnloadModel(absl::string_view identifier);

// --- Prediction ------------------------------------------------------------------------------

// The model specifier of a request: instanceReference when set, else a query by identifier.
Json ModelSpecifierOf(const GenerateRequest& request);
// The `predictionConfigStack` for the request's sampling, stop strings, overflow policy,
// structured output and tools. INVALID_ARGUMENT for JSON schemas that are not JSON objects and
// tool parameter schemas that are not {"type":"object",...}.
absl::StatusOr<Json> EncodePredictionConfigStack(const GenerateRequest& request);
// Chat history {"messages":[{role, content:[parts]}]}. INVALID_ARGUMENT for unknown roles and
// tool-call arguments that are not a JSON object.
absl::StatusOr<Json> EncodeChatHistory(const std::vector<Message>& messages);
// The creationParameter of `predict` (request.chat) or `completeRawText` (!request.chat).
absl::StatusOr<Json> EncodePredictCreation(const GenerateRequest& request);
absl::string_view PredictEndpoint(const GenerateRequest& request);

// --- Embeddings and tokenizer ----------------------------------------------------------------

Json EncodeEmbedString(absl::string_view model, absl::string_view input);
Json EncodeTokenizerInput(absl::string_view model, absl::string_view input);  // tokenize/countTokens
// INTERNAL when the result lacks the expected array/number.
absl::StatusOr<std::vector<float>> DecodeEmbedding(const Json& result);
absl::StatusOr<std::vector<int>> DecodeTokens(const Json& result);
absl::StatusOr<int> DecodeTokenCount(const Json& result);

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_CODEC_H_
