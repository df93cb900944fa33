#include "backends/sdk_ws/codec.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::backends::sdk_ws {
namespace {

void AddField(Json& fields, absl::string_view key, Json value) {
  fields.push_back(Json{{"key", std::string(key)}, {"value", std::move(value)}});
}

Json Checkbox(Json value, bool checked = true) {
  return Json{{"checked", checked}, {"value", std::move(value)}};
}

int IntOr(const Json& object, absl::string_view key, int fallback = 0) {
  std::optional<int64_t> v = IntMember(object, key);
  if (!v.has_value() || *v < INT32_MIN || *v > INT32_MAX) return fallback;
  return static_cast<int>(*v);
}

absl::StatusOr<Json> ParseObject(absl::string_view text, absl::string_view what) {
  absl::StatusOr<Json> parsed = ParseJson(text, what);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " must be a JSON object"));
  return parsed;
}

absl::string_view OverflowName(OverflowPolicy policy) {
  switch (policy) {
    case OverflowPolicy::kStopAtLimit:
      return "stopAtLimit";
    case OverflowPolicy::kTruncateMiddle:
      return "truncateMiddle";
    case OverflowPolicy::kRollingWindow:
      return "rollingWindow";
    case OverflowPolicy::kUnset:
      break;
  }
  return "";
}

absl::string_view ToolChoiceMode(ToolChoice choice) {
  switch (choice) {
    case ToolChoice::kAuto:
      return "auto";
    case ToolChoice::kNone:
      return "none";
    case ToolChoice::kRequired:
      return "required";
    case ToolChoice::kUnset:
      break;
  }
  return "";
}

// {"type":"toolArray","tools":[{"type":"function","function":{name,description?,parameters}}]}
absl::StatusOr<Json> EncodeTools(const std::vector<ToolSpec>& tools) {
  Json array = Json::array();
  for (const ToolSpec& tool : tools) {
    if (tool.name.empty()) return absl::InvalidArgumentError("a tool has no name");
    Json parameters = Json{{"type", "object"}, {"properties", Json::object()}};
    if (!tool.parameters_json_schema.empty()) {
      absl::StatusOr<Json> parsed = ParseObject(
          tool.parameters_json_schema, absl::StrCat("the parameters schema of tool \"", tool.name, "\""));
      if (!parsed.ok()) return parsed.status();
      parameters = *std::move(parsed);
      if (StringMember(parameters, "type", "object") != "object") {
        return absl::InvalidArgumentError(absl::StrCat(
            "the parameters schema of tool \"", tool.name, "\" must have \"type\":\"object\""));
      }
      parameters["type"] = "object";
      // The SDK's schema requires `properties`.
      const Json* props = Member(parameters, "properties");
      if (props == nullptr || !props->is_object()) parameters["properties"] = Json::object();
    }
    Json function = {{"name", tool.name}};
    if (!tool.description.empty()) function["description"] = tool.description;
    function["parameters"] = std::move(parameters);
    array.push_back(Json{{"type", "function"}, {"function", std::move(function)}});
  }
  return Json{{"type", "toolArray"}, {"tools", std::move(array)}};
}

Json TextParts(const std::string& text) {
  return Json::array({Json{{"type", "text"}, {"text", text}}});
}

}  // namespace

ModelType ParseModelType(absl::string_view type) {
  if (type == "llm") return ModelType::kLlm;
  if (type == "embedding") return ModelType::kEmbedding;
  return ModelType::kUnknown;
}

ModelInfo DecodeModelInfo(const Json& info) {
  ModelInfo m;
  m.key = StringMember(info, "modelKey");
  m.display_name = StringMember(info, "displayName");
  m.type = ParseModelType(StringMember(info, "type"));
  m.format = StringMember(info, "format");
  m.size_bytes = IntMember(info, "sizeBytes").value_or(0);
  if (const Json* q = Member(info, "quantization")) {
    m.quantization = StringMember(*q, "name");
    m.quantization_bits = IntOr(*q, "bits");
  }
  m.max_context_length = IntOr(info, "maxContextLength");
  m.publisher = StringMember(info, "publisher");
  m.architecture = StringMember(info, "architecture");
  m.params = StringMember(info, "paramsString");
  m.vision = BoolMember(info, "vision");
  m.trained_for_tool_use = BoolMember(info, "trainedForToolUse");
  return m;
}

InstanceInfo DecodeInstanceInfo(const Json& info) {
  InstanceInfo i;
  i.identifier = StringMember(info, "identifier");
  i.model_key = StringMember(info, "modelKey");
  i.type = ParseModelType(StringMember(info, "type"));
  i.context_length = IntOr(info, "contextLength");
  if (std::optional<double> ttl = NumberMember(info, "ttlMs"); ttl.has_value() && *ttl > 0) {
    i.ttl = absl::Milliseconds(*ttl);
  }
  if (std::optional<double> used = NumberMember(info, "lastUsedTime");
      used.has_value() && *used > 0 && *used < 1e15) {
    i.last_used = absl::FromUnixMillis(static_cast<int64_t>(*used));
  }
  i.instance_reference = StringMember(info, "instanceReference");
  return i;
}

std::optional<int> DecodeParallelSlots(const Json& load_config) {
  const Json* fields = Member(load_config, "fields");
  if (fields == nullptr || !fields->is_array()) return std::nullopt;
  for (const Json& f : *fields) {
    if (!f.is_object() || StringMember(f, "key") != "llm.load.numParallelSessions") continue;
    std::optional<int64_t> n = IntMember(f, "value");
    if (!n.has_value() || *n < 1 || *n > INT32_MAX) return std::nullopt;
    return static_cast<int>(*n);
  }
  return kDefaultParallelSlots;
}

absl::StatusOr<std::vector<ModelInfo>> DecodeModelList(const Json& result) {
  if (!result.is_array()) return absl::InternalError("the host's model list is not an array");
  std::vector<ModelInfo> out;
  for (const Json& item : result) {
    if (!item.is_object() || StringMember(item, "modelKey").empty()) continue;
    out.push_back(DecodeModelInfo(item));
  }
  return out;
}

absl::StatusOr<std::vector<InstanceInfo>> DecodeInstanceList(const Json& result) {
  if (!result.is_array()) return absl::InternalError("the host's instance list is not an array");
  std::vector<InstanceInfo> out;
  for (const Json& item : result) {
    if (!item.is_object() || StringMember(item, "identifier").empty()) continue;
    out.push_back(DecodeInstanceInfo(item));
  }
  return out;
}

Json QuerySpecifier(absl::string_view identifier) {
  return Json{{"type", "query"}, {"query", Json{{"identifier", std::string(identifier)}}}};
}

Json InstanceReferenceSpecifier(absl::string_view reference) {
  return Json{{"type", "instanceReference"}, {"instanceReference", std::string(reference)}};
}

Json ConfigStack(Json fields) {
  return Json{{"layers", Json::array({Json{{"layerName", "apiOverride"},
                                           {"config", Json{{"fields", std::move(fields)}}}}})}};
}

absl::StatusOr<Json> EncodeLoadModel(const LoadParams& p, ModelType type) {
  if (p.model_key.empty()) return absl::InvalidArgumentError("the model key is empty");
  if (p.context_length.has_value() && *p.context_length < 1) {
    return absl::InvalidArgumentError("context_length must be at least 1");
  }
  if (p.gpu_offload_ratio.has_value() &&
      !(*p.gpu_offload_ratio >= 0.0 && *p.gpu_offload_ratio <= 1.0)) {
    return absl::InvalidArgumentError("gpu_offload_ratio must be between 0 and 1");
  }
  for (auto [value, name] : {std::pair{p.cpu_threads, "cpu_threads"},
                             std::pair{p.parallel_slots, "parallel_slots"},
                             std::pair{p.eval_batch_size, "eval_batch_size"}}) {
    if (value.has_value() && *value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be at least 1"));
    }
  }
  Json fields = Json::array();
  if (type == ModelType::kEmbedding) {
    if (p.context_length) AddField(fields, "embedding.load.contextLength", *p.context_length);
    if (p.gpu_offload_ratio) {
      AddField(fields, "embedding.load.llama.acceleration.offloadRatio", *p.gpu_offload_ratio);
    }
    if (p.rope_frequency_base) {
      AddField(fields, "embedding.load.llama.ropeFrequencyBase", Checkbox(*p.rope_frequency_base));
    }
    if (p.rope_frequency_scale) {
      AddField(fields, "embedding.load.llama.ropeFrequencyScale", Checkbox(*p.rope_frequency_scale));
    }
    if (p.eval_batch_size) AddField(fields, "embedding.load.llama.evalBatchSize", *p.eval_batch_size);
  } else {
    // SDK 2.0.0 turns the engines' auto-fit off whenever context or placement is set manually.
    if (p.context_length.has_value() || p.gpu_offload_ratio.has_value()) {
      AddField(fields, "llm.load.llama.autoFit", false);
      AddField(fields, "llm.load.mlx.autoFit", false);
      AddField(fields, "llm.load.yuzu.autoFit", false);
    }
    if (p.gpu_offload_ratio) {
      AddField(fields, "llm.load.llama.acceleration.offloadRatio", *p.gpu_offload_ratio);
    }
    if (p.parallel_slots) AddField(fields, "llm.load.numParallelSessions", *p.parallel_slots);
    if (p.context_length) AddField(fields, "llm.load.contextLength", *p.context_length);
    if (p.rope_frequency_base) {
      AddField(fields, "llm.load.llama.ropeFrequencyBase", Checkbox(*p.rope_frequency_base));
    }
    if (p.rope_frequency_scale) {
      AddField(fields, "llm.load.llama.ropeFrequencyScale", Checkbox(*p.rope_frequency_scale));
    }
    if (p.eval_batch_size) AddField(fields, "llm.load.llama.evalBatchSize", *p.eval_batch_size);
    if (p.flash_attention) AddField(fields, "llm.load.llama.flashAttention", *p.flash_attention);
    if (p.cpu_threads) AddField(fields, "llm.load.llama.cpuThreadPoolSize", *p.cpu_threads);
  }
  Json creation = {{"modelKey", p.model_key}};
  if (!p.identifier.empty()) creation["identifier"] = p.identifier;
  if (p.ttl.has_value()) {
    int64_t ms = absl::ToInt64Milliseconds(*p.ttl);
    if (ms < 1) return absl::InvalidArgumentError("ttl must be at least 1 ms");
    creation["ttlMs"] = ms;
  }
  creation["loadConfigStack"] = ConfigStack(std::move(fields));
  return creation;
}

LoadMessage DecodeLoadMessage(const Json& message) {
  LoadMessage out;
  std::string type = StringMember(message, "type");
  if (type == "resolved") {
    out.kind = LoadMessage::Kind::kResolved;
    if (const Json* info = Member(message, "info")) {
      out.resolved_type = ParseModelType(StringMember(*info, "type"));
    }
  } else if (type == "progress") {
    out.kind = LoadMessage::Kind::kProgress;
    double p = NumberMember(message, "progress").value_or(0);
    out.progress = std::isfinite(p) ? std::clamp(p, 0.0, 1.0) : 0.0;
  } else if (type == "success") {
    out.kind = LoadMessage::Kind::kSuccess;
    if (const Json* info = Member(message, "info")) out.info = DecodeInstanceInfo(*info);
  }
  return out;
}

Json EncodeUnloadModel(absl::string_view identifier) {
  return Json{{"identifier", std::string(identifier)}, {"deviceIdentifier", nullptr}};
}

Json ModelSpecifierOf(const GenerateRequest& request) {
  if (!request.instance_reference.empty()) {
    return InstanceReferenceSpecifier(request.instance_reference);
  }
  return QuerySpecifier(request.model);
}

absl::StatusOr<Json> EncodePredictionConfigStack(const GenerateRequest& r) {
  const Sampling& s = r.sampling;
  Json fields = Json::array();
  constexpr absl::string_view kP = "llm.prediction.";
  auto key = [&](absl::string_view name) { return absl::StrCat(kP, name); };
  if (s.temperature) AddField(fields, key("temperature"), *s.temperature);
  if (r.overflow != OverflowPolicy::kUnset) {
    AddField(fields, key("contextOverflowPolicy"), std::string(OverflowName(r.overflow)));
  }
  if (s.max_tokens) {
    // <= 0 means "no limit", which the SDK encodes as an unchecked box.
    AddField(fields, key("maxPredictedTokens"),
             *s.max_tokens > 0 ? Checkbox(*s.max_tokens) : Checkbox(1, /*checked=*/false));
  }
  if (!s.stop.empty()) AddField(fields, key("stopStrings"), s.stop);
  if (!r.json_schema.empty()) {
    absl::StatusOr<Json> schema = ParseObject(r.json_schema, "the structured-output JSON schema");
    if (!schema.ok()) return schema.status();
    AddField(fields, key("structured"), Json{{"type", "json"}, {"jsonSchema", *std::move(schema)}});
  }
  if (!r.tools.empty()) {
    absl::StatusOr<Json> tools = EncodeTools(r.tools);
    if (!tools.ok()) return tools.status();
    AddField(fields, key("tools"), *std::move(tools));
  }
  if (r.tool_choice != ToolChoice::kUnset) {
    AddField(fields, key("toolChoice"),
             Json{{"type", "generic"}, {"mode", std::string(ToolChoiceMode(r.tool_choice))}});
  }
  if (s.top_k) AddField(fields, key("topKSampling"), *s.top_k);
  if (s.repeat_penalty) AddField(fields, key("repeatPenalty"), Checkbox(*s.repeat_penalty));
  if (s.presence_penalty) {
    AddField(fields, key("llama.presencePenalty"), Checkbox(*s.presence_penalty));
  }
  if (s.frequency_penalty) {
    AddField(fields, key("llama.frequencyPenalty"), Checkbox(*s.frequency_penalty));
  }
  if (s.min_p) AddField(fields, key("minPSampling"), Checkbox(*s.min_p));
  if (s.top_p) AddField(fields, key("topPSampling"), Checkbox(*s.top_p));
  if (s.seed) AddField(fields, key("seed"), Checkbox(*s.seed));
  return ConfigStack(std::move(fields));
}

absl::StatusOr<Json> EncodeChatHistory(const std::vector<Message>& messages) {
  Json out = Json::array();
  for (const Message& m : messages) {
    if (m.role == "system" || m.role == "developer" || m.role == "user") {
      out.push_back(Json{{"role", m.role == "user" ? "user" : "system"},
                         {"content", TextParts(m.content)}});
    } else if (m.role == "assistant") {
      Json parts = Json::array();
      if (!m.content.empty() || m.tool_calls.empty()) {
        parts.push_back(Json{{"type", "text"}, {"text", m.content}});
      }
      for (const ToolCall& call : m.tool_calls) {
        Json request = {{"type", "function"}};
        if (!call.id.empty()) request["id"] = call.id;
        request["name"] = call.name;
        if (!call.arguments.empty()) {
          absl::StatusOr<Json> args = ParseObject(
              call.arguments, absl::StrCat("the arguments of tool call \"", call.name, "\""));
          if (!args.ok()) return args.status();
          request["arguments"] = *std::move(args);
        }
        parts.push_back(Json{{"type", "toolCallRequest"}, {"toolCallRequest", std::move(request)}});
      }
      out.push_back(Json{{"role", "assistant"}, {"content", std::move(parts)}});
    } else if (m.role == "tool") {
      Json part = {{"type", "toolCallResult"}, {"content", m.content}};
      if (!m.tool_call_id.empty()) part["toolCallId"] = m.tool_call_id;
      if (!m.name.empty()) part["name"] = m.name;
      out.push_back(Json{{"role", "tool"}, {"content", Json::array({std::move(part)})}});
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown chat role \"", m.role, "\" (system, user, assistant, tool)"));
    }
  }
  return Json{{"messages", std::move(out)}};
}

absl::StatusOr<Json> EncodePredictCreation(const GenerateRequest& request) {
  if (request.model.empty() && request.instance_reference.empty()) {
    return absl::InvalidArgumentError("the request names no model");
  }
  absl::StatusOr<Json> config = EncodePredictionConfigStack(request);
  if (!config.ok()) return config.status();
  Json creation = {{"modelSpecifier", ModelSpecifierOf(request)}};
  if (request.chat) {
    if (request.messages.empty()) return absl::InvalidArgumentError("the chat has no messages");
    absl::StatusOr<Json> history = EncodeChatHistory(request.messages);
    if (!history.ok()) return history.status();
    creation["history"] = *std::move(history);
  } else {
    creation["rawPrompt"] = request.prompt;
  }
  creation["predictionConfigStack"] = *std::move(config);
  return creation;
}

absl::string_view PredictEndpoint(const GenerateRequest& request) {
  return request.chat ? "predict" : "completeRawText";
}

Json EncodeEmbedString(absl::string_view model, absl::string_view input) {
  return Json{{"modelSpecifier", QuerySpecifier(model)}, {"inputString", std::string(input)}};
}

Json EncodeTokenizerInput(absl::string_view model, absl::string_view input) {
  return Json{{"specifier", QuerySpecifier(model)}, {"inputString", std::string(input)}};
}

absl::StatusOr<std::vector<float>> DecodeEmbedding(const Json& result) {
  const Json* embedding = Member(result, "embedding");
  if (embedding == nullptr || !embedding->is_array()) {
    return absl::InternalError("the host's embedString result has no \"embedding\" array");
  }
  std::vector<float> out;
  out.reserve(embedding->size());
  for (const Json& v : *embedding) {
    if (!v.is_number()) return absl::InternalError("the host's embedding holds a non-number");
    double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > FLT_MAX) {
      return absl::InternalError("the host's embedding holds a value out of float range");
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

absl::StatusOr<std::vector<int>> DecodeTokens(const Json& result) {
  const Json* tokens = Member(result, "tokens");
  if (tokens == nullptr || !tokens->is_array()) {
    return absl::InternalError("the host's tokenize result has no \"tokens\" array");
  }
  std::vector<int> out;
  out.reserve(tokens->size());
  for (const Json& v : *tokens) {
    std::optional<int64_t> id = AsInt(v);
    if (!id.has_value() || *id < INT32_MIN || *id > INT32_MAX) {
      return absl::InternalError("the host's token list holds something other than token ids");
    }
    out.push_back(static_cast<int>(*id));
  }
  return out;
}

absl::StatusOr<int> DecodeTokenCount(const Json& result) {
  std::optional<int64_t> count = IntMember(result, "tokenCount");
  if (!count.has_value() || *count < 0 || *count > INT32_MAX) {
    return absl::InternalError("the host's countTokens result has no \"tokenCount\"");
  }
  return static_cast<int>(*count);
}

}  // namespace lmgate::backends::sdk_ws
