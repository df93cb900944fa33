// Plain data exchanged between lmgate's core and its LM Studio drivers. No gRPC, no protobuf:
// the service layer converts lmgate.v1 messages to these and back (services/convert.h).
#ifndef LMGATE_BACKENDS_TYPES_H_
#define LMGATE_BACKENDS_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/time/time.h"

namespace lmgate::backends {

// The four interfaces LM Studio offers. Values match lmgate.v1.Driver.
enum class DriverKind { kAuto = 0, kSdk = 1, kRest = 2, kOpenAi = 3, kCli = 4 };

// Registry name of a driver: "sdk_ws", "rest", "openai", "cli" ("auto" for kAuto).
absl::string_view DriverKindName(DriverKind kind);

enum class ModelType { kUnknown, kLlm, kEmbedding };

// A model downloaded on the host.
struct ModelInfo {
  std::string key;
  std::string display_name;
  ModelType type = ModelType::kUnknown;
  std::string format;
  int64_t size_bytes = 0;
  std::string quantization;
  int quantization_bits = 0;
  int max_context_length = 0;
  std::string publisher;
  std::string architecture;
  std::string params;
  bool vision = false;
  bool trained_for_tool_use = false;
};

// Slots of an LLM instance when the host's load config leaves the count out: the default of
// llm.load.numParallelSessions in the SDK's config schema (as `lms ps` and the SDK read it).
inline constexpr int kDefaultParallelSlots = 4;

// One loaded instance on the host.
struct InstanceInfo {
  std::string identifier;
  std::string model_key;
  ModelType type = ModelType::kUnknown;
  int context_length = 0;
  std::optional<absl::Duration> ttl;
  std::optional<absl::Time> last_used;
  // 0 = unknown. An LLM whose host reports a load config without a slot count has
  // kDefaultParallelSlots, the SDK's default for llm.load.numParallelSessions.
  int parallel_slots = 0;
  // Driver-private handle (the SDK's instanceReference); empty when the driver has none.
  std::string instance_reference;
};

// What the host reports. Drivers that cannot list downloaded models (the OpenAI interface with
// JIT off) leave `downloaded` empty or partial and set `downloaded_known` false. Drivers that cannot tell
// which models are loaded (the OpenAI interface with JIT on, whose list is the downloaded
// models) leave `loaded` empty and set `loaded_known` false.
struct HostModels {
  std::vector<ModelInfo> downloaded;
  bool downloaded_known = true;
  std::vector<InstanceInfo> loaded;
  bool loaded_known = true;
  // "loading" states reported by the host (REST v0 may report them), keyed by model key.
  std::vector<std::string> loading_keys;
};

// Load parameters. Unset = the host's default.
struct LoadParams {
  std::string model_key;
  std::string identifier;  // empty = host-assigned (key, key:2, ...)
  std::optional<int> context_length;
  std::optional<double> gpu_offload_ratio;
  std::optional<int> cpu_threads;
  std::optional<double> rope_frequency_base;
  std::optional<double> rope_frequency_scale;
  std::optional<bool> flash_attention;
  std::optional<int> parallel_slots;
  std::optional<int> eval_batch_size;
  std::optional<absl::Duration> ttl;
};

struct Sampling {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<double> min_p;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  std::optional<double> presence_penalty;
  std::optional<double> frequency_penalty;
  std::optional<double> repeat_penalty;
  std::optional<int64_t> seed;
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON object text
};

struct Message {
  std::string role;  // system | user | assistant | tool
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;
  std::string name;
};

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json_schema;  // JSON text; "" = {"type":"object"}
};

enum class ToolChoice { kUnset, kAuto, kNone, kRequired };
enum class OverflowPolicy { kUnset, kStopAtLimit, kTruncateMiddle, kRollingWindow };

// A chat (messages) or raw completion (prompt) request for one model instance.
struct GenerateRequest {
  // What to send upstream as the model: an instance identifier (preferred) or a model key.
  std::string model;
  // SDK instanceReference of that instance, when known (lets the SDK driver skip a lookup).
  std::string instance_reference;
  bool chat = true;
  std::vector<Message> messages;  // chat
  std::string prompt;             // !chat
  Sampling sampling;
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice = ToolChoice::kUnset;
  std::string json_schema;  // structured output; "" = none
  std::string schema_name;
  OverflowPolicy overflow = OverflowPolicy::kUnset;
};

enum class StopReason {
  kUnspecified,
  kEos,
  kStopString,
  kMaxTokens,
  kContextLength,
  kToolCalls,
  kUserStopped,
  kModelUnloaded,
};

// Parses LM Studio's stopReason ("eosFound", ...) and OpenAI's finish_reason ("stop", "length",
// "tool_calls"). Unknown text maps to kUnspecified.
StopReason ParseStopReason(absl::string_view text);

struct GenerateStats {
  std::optional<absl::Duration> time_to_first_token;
  std::optional<double> tokens_per_second;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  StopReason stop_reason = StopReason::kUnspecified;
  std::string stop_string;
  // True when the timings above come from LM Studio (SDK stats, REST v0 stats).
  bool upstream_timings = false;
};

// One streamed piece of a generation, delivered in order.
struct GenerateEvent {
  enum class Kind {
    kContent,         // text
    kReasoning,       // text
    kToolCallDelta,   // tool_index, tool_id/tool_name (first fragment), text = arguments piece
    kPromptProgress,  // progress
  };
  Kind kind = Kind::kContent;
  std::string text;
  int tool_index = 0;
  std::string tool_id;
  std::string tool_name;
  double progress = 0;
};

struct GenerateResult {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  GenerateStats stats;
};

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;  // input order
  int prompt_tokens = 0;
};

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_TYPES_H_
