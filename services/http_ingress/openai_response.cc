#include "services/http_ingress/openai_response.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace lmgate::http_ingress {
namespace {

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json UsageOf(const backends::GenerateStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.completion_tokens},
          {"total_tokens", s.prompt_tokens + s.completion_tokens}};
}

Json ToolCallsOf(const std::vector<backends::ToolCall>& calls) {
  Json out = Json::array();
  for (const auto& c : calls) {
    out.push_back({{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return out;
}

const char* ObjectName(const AnswerId& a, bool chunk) {
  if (!a.chat) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

Json Head(const AnswerId& a, bool chunk) {
  return {{"id", a.id}, {"object", ObjectName(a, chunk)}, {"created", a.created},
          {"model", a.model}, {"system_fingerprint", "lmgate"}};
}

}  // namespace

const char* FinishReason(const backends::GenerateResult& r) {
  using S = backends::StopReason;
  if (!r.tool_calls.empty() || r.stats.stop_reason == S::kToolCalls) return "tool_calls";
  if (r.stats.stop_reason == S::kMaxTokens || r.stats.stop_reason == S::kContextLength) {
    return "length";
  }
  return "stop";
}

std::string CompletionJson(const AnswerId& a, const gateway::GenerateOutcome& outcome) {
  const auto& r = outcome.result;
  Json choice = {{"index", 0}, {"finish_reason", FinishReason(r)}, {"logprobs", nullptr}};
  if (a.chat) {
    Json msg = {{"role", "assistant"}};
    msg["content"] = r.content.empty() && !r.tool_calls.empty() ? Json() : Json(r.content);
    if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
    if (!r.tool_calls.empty()) msg["tool_calls"] = ToolCallsOf(r.tool_calls);
    choice["message"] = msg;
  } else {
    choice["text"] = r.content;
  }
  Json out = Head(a, false);
  out["choices"] = Json::array({choice});
  out["usage"] = UsageOf(r.stats);
  // lmgate's bookkeeping, as gRPC's InferenceStats has it.
  Json stats = {{"driver", std::string(backends::DriverKindName(outcome.driver))},
                {"model_key", outcome.model_key},
                {"instance", outcome.instance},
                {"queue_ms", absl::ToDoubleMilliseconds(outcome.queue_wait)},
                {"load_ms", absl::ToDoubleMilliseconds(outcome.load_wait)},
                {"total_ms", absl::ToDoubleMilliseconds(outcome.total_time)}};
  if (r.stats.time_to_first_token) {
    stats["ttft_ms"] = absl::ToDoubleMilliseconds(*r.stats.time_to_first_token);
  }
  if (r.stats.tokens_per_second) stats["tokens_per_second"] = *r.stats.tokens_per_second;
  out["lmgate"] = stats;
  return Dump(out);
}

namespace {

std::string Chunk(const AnswerId& a, Json choice) {
  Json out = Head(a, true);
  out["choices"] = Json::array({std::move(choice)});
  return absl::StrCat("data: ", Dump(out), "\n\n");
}

}  // namespace

std::string StreamFormat::Event(const backends::GenerateEvent& e) {
  using K = backends::GenerateEvent::Kind;
  if (e.kind == K::kPromptProgress) return "";
  Json choice = {{"index", 0}, {"finish_reason", nullptr}};
  if (!a_.chat) {
    if (e.kind != K::kContent) return "";
    choice["text"] = e.text;
    choice["logprobs"] = nullptr;
    return Chunk(a_, std::move(choice));
  }
  Json delta = Json::object();
  if (!role_sent_) {
    delta["role"] = "assistant";
    role_sent_ = true;
  }
  switch (e.kind) {
    case K::kContent:
      delta["content"] = e.text;
      break;
    case K::kReasoning:
      delta["reasoning_content"] = e.text;
      break;
    case K::kToolCallDelta: {
      Json fn = {{"arguments", e.text}};
      Json call = {{"index", e.tool_index}};
      if (!e.tool_id.empty()) {
        call["id"] = e.tool_id;
        call["type"] = "function";
      }
      if (!e.tool_name.empty()) fn["name"] = e.tool_name;
      call["function"] = fn;
      delta["tool_calls"] = Json::array({call});
      break;
    }
    default:
      return "";
  }
  choice["delta"] = delta;
  return Chunk(a_, std::move(choice));
}

std::string StreamFormat::Finish(const backends::GenerateResult& result) {
  Json choice = {{"index", 0}, {"finish_reason", FinishReason(result)}};
  if (a_.chat) {
    choice["delta"] = Json::object();
  } else {
    choice["text"] = "";
    choice["logprobs"] = nullptr;
  }
  return Chunk(a_, std::move(choice));
}

std::string StreamFormat::Usage(const backends::GenerateStats& stats) {
  Json out = Head(a_, true);
  out["choices"] = Json::array();
  out["usage"] = UsageOf(stats);
  return absl::StrCat("data: ", Dump(out), "\n\n");
}

std::string StreamFormat::Error(const std::string& error_json) {
  return absl::StrCat("event: error\ndata: ", error_json, "\n\n");
}

namespace {

Json ModelObject(const lifecycle::ModelSnapshot& m) {
  Json instances = Json::array();
  for (const auto& i : m.instances) {
    instances.push_back({{"identifier", i.info.identifier},
                         {"state", std::string(lifecycle::StateName(i.state))},
                         {"context_length", i.info.context_length},
                         {"in_flight", i.in_flight}});
  }
  const char* type = m.info.type == backends::ModelType::kEmbedding ? "embedding"
                     : m.info.type == backends::ModelType::kLlm     ? "llm"
                                                                    : "unknown";
  return {{"id", m.info.key},
          {"object", "model"},
          {"created", 0},
          {"owned_by", m.info.publisher.empty() ? "lmstudio" : m.info.publisher},
          {"lmgate",
           {{"type", type},
            {"state", std::string(lifecycle::StateName(m.state))},
            {"max_context_length", m.info.max_context_length},
            {"instances", instances}}}};
}

}  // namespace

std::string ModelJson(const lifecycle::ModelSnapshot& m) { return Dump(ModelObject(m)); }

std::string ModelListJson(const std::vector<const lifecycle::ModelSnapshot*>& models) {
  Json data = Json::array();
  for (const auto* m : models) data.push_back(ModelObject(*m));
  return Dump({{"object", "list"}, {"data", data}});
}

std::string EmbeddingsJson(const backends::EmbedResult& result, const std::string& model,
                           bool base64) {
  Json data = Json::array();
  for (size_t i = 0; i < result.embeddings.size(); ++i) {
    const auto& v = result.embeddings[i];
    Json e = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      // Little-endian float32, as OpenAI's encoding_format=base64 (lmgate runs on x86/arm LE).
      std::string raw(v.size() * sizeof(float), '\0');
      if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
      e["embedding"] = absl::Base64Escape(raw);
    } else {
      e["embedding"] = v;
    }
    data.push_back(std::move(e));
  }
  return Dump({{"object", "list"},
               {"data", data},
               {"model", model},
               {"usage",
                {{"prompt_tokens", result.prompt_tokens},
                 {"total_tokens", result.prompt_tokens}}}});
}

}  // namespace lmgate::http_ingress
