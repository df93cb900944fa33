// The emulator's "model": a small real tokenizer, a chat template, deterministic text generation,
// tool calls, JSON-schema-shaped output and embeddings. Everything here is a pure function of its
// inputs, so every interface (SDK, REST v0/v1, OpenAI) produces the same text for the same model,
// messages, tools, seed and limits.
//
// Thread-safety: stateless free functions; safe from any thread.
#ifndef LMGATE_TESTS_EMULATOR_TEXT_MODEL_H_
#define LMGATE_TESTS_EMULATOR_TEXT_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/emulator/catalogue.h"

namespace lmgate::emulator {

struct Token {
  std::string text;
  int32_t id = 0;
};

// Splits text into tokens: an optional run of spaces/tabs glued to the following word (letters,
// digits, UTF-8 bytes) or single punctuation character, "\n" alone, and the special tokens
// <|im_start|>, <|im_end|>, <|tools|>, <think>, </think>, <tool_call>, </tool_call>.
// Concatenating the texts gives back the input. Ids are stable (FNV-1a of the piece).
std::vector<Token> Tokenize(absl::string_view text);
inline int64_t CountTokens(absl::string_view text) {
  return static_cast<int64_t>(Tokenize(text).size());
}

struct ToolDefinition {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // JSON schema object, or null
};

struct ToolCall {
  std::string id;  // numeric string, as LM Studio sends
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string text;
  std::vector<ToolCall> tool_calls;  // assistant messages that requested tools
  std::string tool_call_id;          // tool results
};

// What the model is asked. Either chat `messages` (a chat template is applied) or `raw_prompt`
// (completions: no template).
struct PromptInput {
  std::vector<ChatMessage> messages;
  std::optional<std::string> raw_prompt;
  std::vector<ToolDefinition> tools;
};

// The text the model "sees": ChatML-like template over the messages (tools first), or the raw
// prompt. Prompt token counts are CountTokens(RenderPrompt(...)).
std::string RenderPrompt(const PromptInput& input);

enum class TokenKind { kContent, kReasoning, kReasoningStartTag, kReasoningEndTag, kToolCall };
enum class ToolPart { kNone, kBegin, kName, kArguments, kEnd };

struct PlannedToken {
  std::string text;
  TokenKind kind = TokenKind::kContent;
  ToolPart tool_part = ToolPart::kNone;  // only for kToolCall
  int tool_call = -1;                    // index into GenerationPlan::tool_calls
};

struct GenerationOptions {
  uint64_t seed = 0;
  bool allow_reasoning = true;             // false: a reasoning model skips its <think> block
  std::string tool_choice = "auto";        // auto | none | required
  std::optional<nlohmann::json> json_schema;  // structured output: content is JSON for it
  int min_content_tokens = 16;             // natural response length range
  int max_content_tokens = 48;
};

// The full natural output (before max-tokens / stop-string / context cut-offs).
struct GenerationPlan {
  std::vector<PlannedToken> tokens;
  std::vector<ToolCall> tool_calls;
};

// Rules: a reasoning model first emits <think> 8–24 reasoning tokens </think> (unless structured
// output or !allow_reasoning). With tools and tool_choice "required", or "auto" when the last message
// is the user's, it calls one tool (the one named in the last user message, else the first) with
// arguments generated from the tool's parameter schema, and no content. With a JSON schema the
// content is a JSON document valid for it. Otherwise content is English-looking sentences.
GenerationPlan PlanGeneration(const ModelSpec& model, const PromptInput& input,
                              const GenerationOptions& options);

// A JSON value valid for `schema` (type, properties/required, items/minItems/maxItems, enum, const,
// anyOf/oneOf, $ref into $defs/definitions, string formats date/date-time/email/uri/uuid,
// minimum/maximum, minLength/maxLength). `pattern` is not honoured.
nlohmann::json SampleJsonForSchema(const nlohmann::json& schema, uint64_t seed);

// Unit-length embedding of model.embedding_dimension floats: the normalised sum of per-token
// pseudo-random vectors, so texts sharing words are close.
std::vector<float> Embed(const ModelSpec& model, absl::string_view text);

// Tools in the shape shared by OpenAI requests and the SDK's llm.prediction.tools:
// [{"type":"function","function":{"name","description"?,"parameters"?}}]. Malformed entries are
// skipped.
std::vector<ToolDefinition> ToolsFromJson(const nlohmann::json& tools);

// FNV-1a 64-bit; exposed for stable ids elsewhere in the emulator.
uint64_t Fnv1a64(absl::string_view data, uint64_t seed = 1469598103934665603ULL);

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_TEXT_MODEL_H_
