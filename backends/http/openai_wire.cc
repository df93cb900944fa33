#include "backends/http/openai_wire.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/http/json.h"
#include "backends/json.h"
#include "backends/http/status.h"

namespace lmgate::backends::http {
namespace {

// A JSON object given as text by the caller (tool parameters, json_schema).
absl::StatusOr<Json> ParseSchema(const std::string& text, absl::string_view what) {
  if (text.empty()) return Json{{"type", "object"}, {"properties", Json::object()}};
  absl::StatusOr<Json> parsed = ParseBoundedJson(text, what);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a JSON object: \"", Snippet(text), "\""));
  }
  return parsed;
}

Json MessageJson(const Message& m) {
  Json out{{"role", m.role}};
  if (m.tool_calls.empty() || !m.content.empty()) {
    out["content"] = m.content;
  } else {
    out["content"] = nullptr;  // an assistant turn that only called tools
  }
  if (!m.tool_calls.empty()) {
    Json calls = Json::array();
    for (const ToolCall& c : m.tool_calls) {
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) out["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) out["name"] = m.name;
  return out;
}

void AddSampling(const Sampling& s, Json* body) {
  Json& b = *body;
  if (s.temperature) b["temperature"] = *s.temperature;
  if (s.top_p) b["top_p"] = *s.top_p;
  if (s.top_k) b["top_k"] = *s.top_k;
  if (s.min_p) b["min_p"] = *s.min_p;
  if (s.max_tokens) b["max_tokens"] = *s.max_tokens;
  if (!s.stop.empty()) b["stop"] = s.stop;
  if (s.presence_penalty) b["presence_penalty"] = *s.presence_penalty;
  if (s.frequency_penalty) b["frequency_penalty"] = *s.frequency_penalty;
  if (s.repeat_penalty) b["repeat_penalty"] = *s.repeat_penalty;
  if (s.seed) b["seed"] = *s.seed;
}

}  // namespace

absl::StatusOr<std::string> BuildGenerateBody(const GenerateRequest& request, bool stream) {
  if (request.model.empty()) return absl::InvalidArgumentError("no model given");
  Json body{{"model", request.model}};
  if (request.chat) {
    Json messages = Json::array();
    for (const Message& m : request.messages) messages.push_back(MessageJson(m));
    body["messages"] = std::move(messages);
  } else {
    if (!request.tools.empty()) {
      return absl::InvalidArgumentError("tools need a chat request, not a text completion");
    }
    body["prompt"] = request.prompt;
  }
  AddSampling(request.sampling, &body);
  if (!request.tools.empty()) {
    Json tools = Json::array();
    for (const ToolSpec& t : request.tools) {
      auto params = ParseSchema(t.parameters_json_schema,
                                absl::StrCat("parameters of tool \"", t.name, "\""));
      if (!params.ok()) return params.status();
      Json fn{{"name", t.name}, {"parameters", std::move(*params)}};
      if (!t.description.empty()) fn["description"] = t.description;
      tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    body["tools"] = std::move(tools);
  }
  switch (request.tool_choice) {
    case ToolChoice::kUnset:
      break;
    case ToolChoice::kAuto:
      body["tool_choice"] = "auto";
      break;
    case ToolChoice::kNone:
      body["tool_choice"] = "none";
      break;
    case ToolChoice::kRequired:
      body["tool_choice"] = "required";
      break;
  }
  if (!request.json_schema.empty()) {
    auto schema = ParseSchema(request.json_schema, "json_schema");
    if (!schema.ok()) return schema.status();
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", request.schema_name.empty() ? "response" : request.schema_name},
          {"strict", true},
          {"schema", std::move(*schema)}}}};
  }
  body["stream"] = stream;
  if (stream) body["stream_options"] = {{"include_usage", true}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

CompletionAccumulator::CompletionAccumulator(bool use_upstream_stats, std::string base_url,
                                             std::string path)
    : use_upstream_stats_(use_upstream_stats),
      base_url_(std::move(base_url)),
      path_(std::move(path)) {}

absl::Status CompletionAccumulator::AddChunk(absl::string_view data,
                                             std::vector<GenerateEvent>* events) {
  if (data == "[DONE]") {
    saw_done_ = true;
    return absl::OkStatus();
  }
  auto json = ParseJson(data, absl::StrCat("a stream chunk from LM Studio at ", base_url_));
  if (!json.ok()) return json.status();
  return AddObject(*json, /*whole=*/false, events);
}

absl::Status CompletionAccumulator::AddWhole(absl::string_view body,
                                             std::vector<GenerateEvent>* events) {
  auto json = ParseJson(body, absl::StrCat("the answer of LM Studio at ", base_url_));
  if (!json.ok()) return json.status();
  absl::Status status = AddObject(*json, /*whole=*/true, events);
  saw_done_ = true;
  return status;
}

absl::Status CompletionAccumulator::AddObject(const Json& obj, bool whole,
                                              std::vector<GenerateEvent>* events) {
  if (!obj.is_object()) {
    return absl::InternalError(absl::StrCat("LM Studio at ", base_url_,
                                            " sent a non-object chunk: ", Snippet(obj.dump())));
  }
  if (JsonMember(obj, "error") != nullptr) {
    std::optional<LmStudioError> error = ParseLmStudioError(obj.dump());
    return StatusFromStreamError(error.value_or(LmStudioError{"unknown error", "", "", ""}),
                                 RequestInfo{base_url_, "POST", path_});
  }
  const Json* choices = JsonMember(obj, "choices");
  if (choices != nullptr && choices->is_array()) {
    for (const Json& choice : *choices) {
      // We ask for one choice: skip any other (an index out of range included).
      if (const Json* i = JsonMember(choice, "index");
          i != nullptr && i->is_number() && JsonInt(choice, "index") != 0) {
        continue;
      }
      const Json* src = JsonMember(choice, whole ? "message" : "delta");
      auto emit = [&](GenerateEvent::Kind kind, std::string text) {
        if (text.empty()) return;
        (kind == GenerateEvent::Kind::kContent ? result_.content : result_.reasoning) += text;
        ++deltas_;
        GenerateEvent e;
        e.kind = kind;
        e.text = std::move(text);
        events->push_back(std::move(e));
      };
      if (src != nullptr) {
        std::string reasoning = JsonString(*src, "reasoning_content");
        if (reasoning.empty()) reasoning = JsonString(*src, "reasoning");
        emit(GenerateEvent::Kind::kReasoning, std::move(reasoning));
        emit(GenerateEvent::Kind::kContent, JsonString(*src, "content"));
        const Json* calls = JsonMember(*src, "tool_calls");
        if (calls != nullptr && calls->is_array()) {
          int position = 0;
          for (const Json& call : *calls) {
            const Json* index_member = JsonMember(call, "index");
            const std::optional<int64_t> raw = index_member != nullptr && index_member->is_number()
                                                   ? JsonInt(call, "index")
                                                   : std::optional<int64_t>(position);
            ++position;
            if (!raw.has_value() || *raw < 0 || *raw > 1024) continue;
            const int index = static_cast<int>(*raw);
            if (result_.tool_calls.size() <= static_cast<size_t>(index)) {
              result_.tool_calls.resize(index + 1);
            }
            ToolCall& tc = result_.tool_calls[index];
            GenerateEvent e;
            e.kind = GenerateEvent::Kind::kToolCallDelta;
            e.tool_index = index;
            e.tool_id = JsonString(call, "id");
            if (!e.tool_id.empty()) tc.id = e.tool_id;
            if (const Json* fn = JsonMember(call, "function")) {
              e.tool_name = JsonString(*fn, "name");
              if (!e.tool_name.empty()) tc.name = e.tool_name;
              e.text = JsonString(*fn, "arguments");
              tc.arguments += e.text;
            }
            ++deltas_;
            events->push_back(std::move(e));
          }
        }
      }
      // Text completions carry their piece as choices[].text.
      emit(GenerateEvent::Kind::kContent, JsonString(choice, "text"));
      std::string finish = JsonString(choice, "finish_reason");
      if (!finish.empty()) {
        saw_finish_ = true;
        if (!stop_from_stats_) result_.stats.stop_reason = ParseStopReason(finish);
      }
    }
  }
  if (const Json* usage = JsonMember(obj, "usage")) {
    saw_usage_ = true;
    result_.stats.prompt_tokens = JsonInt32(*usage, "prompt_tokens").value_or(0);
    result_.stats.completion_tokens = JsonInt32(*usage, "completion_tokens").value_or(0);
  }
  const Json* stats = JsonMember(obj, "stats");
  if (use_upstream_stats_ && stats != nullptr && stats->is_object()) {
    GenerateStats& s = result_.stats;
    if (auto tps = JsonDouble(*stats, "tokens_per_second")) {
      s.tokens_per_second = *tps;
      s.upstream_timings = true;
    }
    if (auto ttft = JsonDouble(*stats, "time_to_first_token")) {
      s.time_to_first_token = absl::Seconds(*ttft);
      s.upstream_timings = true;
    }
    std::string stop = JsonString(*stats, "stop_reason");
    if (!stop.empty() && ParseStopReason(stop) != StopReason::kUnspecified) {
      s.stop_reason = ParseStopReason(stop);
      stop_from_stats_ = true;
    }
    std::string stop_string = JsonString(*stats, "stop_string");
    if (!stop_string.empty()) s.stop_string = stop_string;
  }
  return absl::OkStatus();
}

std::string BuildEmbeddingsBody(const std::string& model, const std::vector<std::string>& inputs) {
  return Json{{"model", model}, {"input", inputs}}.dump(-1, ' ', false,
                                                        Json::error_handler_t::replace);
}

absl::StatusOr<EmbedResult> ParseEmbeddingsResponse(absl::string_view body, size_t expected) {
  auto json = ParseJson(body, "the embeddings answer");
  if (!json.ok()) return json.status();
  const Json* data = JsonMember(*json, "data");
  if (data == nullptr || !data->is_array()) {
    return absl::InternalError(
        absl::StrCat("the embeddings answer has no data array: ", Snippet(body)));
  }
  std::vector<std::pair<int64_t, std::vector<float>>> indexed;
  int64_t position = 0;
  for (const Json& item : *data) {
    const Json* vec = JsonMember(item, "embedding");
    if (vec == nullptr || !vec->is_array()) {
      return absl::InternalError("an embeddings item has no embedding array");
    }
    std::vector<float> values;
    values.reserve(vec->size());
    for (const Json& v : *vec) {
      if (!v.is_number()) return absl::InternalError("an embedding holds a non-number");
      values.push_back(v.get<float>());
    }
    indexed.emplace_back(JsonInt(item, "index").value_or(position), std::move(values));
    ++position;
  }
  if (indexed.size() != expected) {
    return absl::InternalError(absl::StrCat("asked for ", expected, " embeddings, got ",
                                            indexed.size()));
  }
  std::stable_sort(indexed.begin(), indexed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  EmbedResult result;
  for (auto& [index, values] : indexed) result.embeddings.push_back(std::move(values));
  if (const Json* usage = JsonMember(*json, "usage")) {
    result.prompt_tokens = JsonInt32(*usage, "prompt_tokens").value_or(0);
  }
  return result;
}

}  // namespace lmgate::backends::http
