// OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/embeddings and their REST v0
// twins (/api/v0/...: the same bodies plus `stats`, `model_info` and `runtime`).
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/json.h"
#include "tests/emulator/http_api.h"
#include "tests/emulator/http_internal.h"

namespace lmgate::emulator {

using nlohmann::json;
using namespace http_internal;  // NOLINT(build/namespaces): private helpers of this component

namespace http_internal {

std::string RandomId(const std::string& prefix) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 22; ++i) id += kChars[rng() % 36];
  return id;
}

int64_t NowSeconds() { return absl::ToUnixSeconds(absl::Now()); }

std::string FinishReason(const std::string& stop) {
  if (stop == "maxPredictedTokensReached" || stop == "contextLengthReached") return "length";
  if (stop == "toolCalls") return "tool_calls";
  return "stop";
}

bool IsClientGone(const absl::Status& s, const Job* job) {
  return job->cancelled() || s.code() == absl::StatusCode::kCancelled;
}

}  // namespace http_internal

namespace {

std::string ContentText(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::vector<std::string> parts;
  if (content.is_array()) {
    for (const json& p : content) {
      if (p.is_object() && p.value("type", "") == "text") parts.push_back(p.value("text", ""));
    }
  }
  return absl::StrJoin(parts, "\n");
}

absl::StatusOr<PredictionRequest> ParseOpenAi(const json& body, bool completions) {
  PredictionRequest req;
  if (completions) {
    const json& p = body.contains("prompt") ? body["prompt"] : json();
    if (p.is_string()) {
      req.prompt.raw_prompt = p.get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_string()) {
      req.prompt.raw_prompt = p[0].get<std::string>();
    } else {
      return absl::InvalidArgumentError("'prompt' field is required and must be a string");
    }
    req.generation.allow_reasoning = false;  // raw completions do not parse <think>
  } else {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return absl::InvalidArgumentError("'messages' field is required and must be a non-empty array");
    }
    for (const json& m : body["messages"]) {
      if (!m.is_object()) return absl::InvalidArgumentError("Each message must be an object");
      ChatMessage msg;
      msg.role = m.value("role", "user");
      if (msg.role == "developer") msg.role = "system";
      msg.text = ContentText(m.value("content", json()));
      msg.tool_call_id = m.value("tool_call_id", "");
      for (const json& c : m.value("tool_calls", json::array())) {
        const json f = c.value("function", json::object());
        const json raw_args = f.value("arguments", json("{}"));
        absl::StatusOr<json> args =
            raw_args.is_string()
                ? backends::ParseBoundedJson(raw_args.get<std::string>(), "arguments")
                : raw_args;
        if (!args.ok() || !args->is_object()) args = json::object();
        msg.tool_calls.push_back({c.value("id", ""), f.value("name", ""), *std::move(args)});
      }
      req.prompt.messages.push_back(std::move(msg));
    }
    req.prompt.tools = ToolsFromJson(body.value("tools", json::array()));
    const json choice = body.value("tool_choice", json("auto"));
    if (choice.is_string()) {
      req.generation.tool_choice = choice.get<std::string>();
    } else if (choice.is_object() && choice.contains("function")) {
      const std::string name = choice["function"].value("name", "");
      std::vector<ToolDefinition> only;
      for (const ToolDefinition& t : req.prompt.tools) {
        if (t.name == name) only.push_back(t);
      }
      if (!only.empty()) req.prompt.tools = only;
      req.generation.tool_choice = "required";
    }
    const json rf = body.value("response_format", json::object());
    const std::string rf_type = rf.is_object() ? rf.value("type", "text") : "text";
    if (rf_type == "json_schema") {
      const json js = rf.value("json_schema", json::object());
      req.generation.json_schema = js.value("schema", json{{"type", "object"}});
    } else if (rf_type == "json_object") {
      req.generation.json_schema = json{{"type", "object"}};
    }
  }
  const json max = body.contains("max_tokens") ? body["max_tokens"]
                                               : body.value("max_completion_tokens", json());
  if (max.is_number_integer() && max.get<int64_t>() >= 0) req.max_tokens = max.get<int64_t>();
  const json stop = body.value("stop", json());
  if (stop.is_string()) req.stop_strings.push_back(stop.get<std::string>());
  for (const json& s : stop.is_array() ? stop : json::array()) {
    if (s.is_string()) req.stop_strings.push_back(s.get<std::string>());
  }
  const json seed = body.value("seed", json());
  if (seed.is_number_integer() && seed.get<int64_t>() >= 0) {
    req.generation.seed = seed.get<uint64_t>();
  }
  return req;
}

std::optional<int64_t> TtlMs(const json& body) {
  const json ttl = body.value("ttl", json());
  if (ttl.is_number() && ttl.get<double>() > 0) {
    return static_cast<int64_t>(ttl.get<double>() * 1000);
  }
  return std::nullopt;
}

json Usage(const PredictionStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.predicted_tokens},
          {"total_tokens", s.prompt_tokens + s.predicted_tokens},
          {"completion_tokens_details", {{"reasoning_tokens", s.reasoning_tokens}}}};
}

json V0Stats(const PredictionStats& s) {
  return {{"tokens_per_second", s.tokens_per_second},
          {"time_to_first_token", s.time_to_first_token_sec},
          {"generation_time", s.total_time_sec - s.time_to_first_token_sec},
          {"stop_reason", s.stop_reason}};
}

void AddV0Blocks(const ModelSpec& spec, int64_t ctx, json* body) {
  (*body)["model_info"] = {{"arch", spec.architecture},
                           {"quant", spec.quantization_name},
                           {"format", CompatibilityType(spec)},
                           {"context_length", ctx}};
  (*body)["runtime"] = {{"name", "llama.cpp-linux-x86_64-avx2"},
                        {"version", "1.3.0"},
                        {"supported_formats", {"gguf"}}};
}

json ToolCallsJson(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const ToolCall& c : calls) {
    out.push_back({{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments.dump()}}}});
  }
  return out;
}

// SSE chunks for chat.completion.chunk / text_completion. The stream starts lazily with the first
// event so errors before the prediction starts are still plain JSON responses.
class StreamObserver : public PredictionObserver {
 public:
  StreamObserver(std::shared_ptr<HttpResponder> r, json base, bool completions, bool v0,
                 bool include_usage, const ModelSpec& spec, int64_t ctx)
      : r_(std::move(r)), base_(std::move(base)), completions_(completions), v0_(v0),
        include_usage_(include_usage), spec_(spec), ctx_(ctx) {}

  void OnPromptProgress(double, int64_t) override { Start(); }
  void OnFragment(const Fragment& f) override {
    if (completions_) {
      Choice({{"index", 0}, {"text", f.content}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
      return;
    }
    if (f.reasoning_type == "reasoningStartTag" || f.reasoning_type == "reasoningEndTag") return;
    Delta({{f.reasoning_type == "reasoning" ? "reasoning_content" : "content", f.content}});
  }
  void OnToolCallStart(const ToolCall& c) override {
    Delta({{"tool_calls", {{{"index", tool_index_}, {"id", c.id}, {"type", "function"},
                            {"function", {{"name", c.name}, {"arguments", ""}}}}}}});
  }
  void OnToolCallArguments(const std::string& fragment) override {
    Delta({{"tool_calls", {{{"index", tool_index_}, {"function", {{"arguments", fragment}}}}}}});
  }
  void OnToolCallEnd(const ToolCall&, const std::string&) override { ++tool_index_; }
  void OnDropConnection() override { r_->Drop(); }
  void OnDone(const PredictionResult& result) override {
    Start();
    if (result.stats.stop_reason == "modelUnloaded") {
      Write({{"error", {{"message", "The model was unloaded during the prediction"}}}});
    } else {
      json choice = {{"index", 0}, {"logprobs", nullptr},
                     {"finish_reason", FinishReason(result.stats.stop_reason)}};
      if (completions_) {
        choice["text"] = "";
      } else {
        choice["delta"] = json::object();
      }
      json chunk = base_;
      chunk["choices"] = json::array({choice});
      // Emulator's choice: v0 streams carry `usage` and `stats` on the final chunk.
      if (v0_) {
        chunk["usage"] = Usage(result.stats);
        chunk["stats"] = V0Stats(result.stats);
        AddV0Blocks(spec_, ctx_, &chunk);
      }
      Write(chunk);
      if (include_usage_ && !v0_) {
        json usage = base_;
        usage["choices"] = json::array();
        usage["usage"] = Usage(result.stats);
        Write(usage);
      }
    }
    r_->WriteChunk("data: [DONE]\n\n");
    r_->EndStream();
  }

 private:
  void Start() {
    if (started_) return;
    started_ = true;
    r_->StartStream("text/event-stream");
  }
  void Write(const json& chunk) {
    Start();
    r_->WriteChunk(absl::StrCat("data: ", chunk.dump(), "\n\n"));
  }
  void Choice(json choice) {
    json chunk = base_;
    chunk["choices"] = json::array({std::move(choice)});
    Write(chunk);
  }
  void Delta(json delta) {
    if (!sent_role_) {
      delta["role"] = "assistant";
      sent_role_ = true;
    }
    Choice({{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
            {"finish_reason", nullptr}});
  }

  std::shared_ptr<HttpResponder> r_;
  const json base_;
  const bool completions_, v0_, include_usage_;
  const ModelSpec& spec_;
  const int64_t ctx_;
  bool started_ = false;
  bool sent_role_ = false;
  int tool_index_ = 0;
};

class CollectObserver : public PredictionObserver {
 public:
  explicit CollectObserver(std::shared_ptr<HttpResponder> r) : r_(std::move(r)) {}
  void OnFragment(const Fragment&) override {}
  void OnDropConnection() override { r_->Drop(); }
  void OnDone(const PredictionResult& result) override { result_ = result; }
  const PredictionResult& result() const { return result_; }

 private:
  std::shared_ptr<HttpResponder> r_;
  PredictionResult result_;
};

}  // namespace

HttpHandleResult HttpApi::HandleOpenAiStyle(const std::string& path, const json& body, bool v0,
                                            std::shared_ptr<HttpResponder> r) {
  const bool completions = path == "/v1/completions" || path == "/api/v0/completions";
  absl::StatusOr<PredictionRequest> parsed = ParseOpenAi(body, completions);
  if (!parsed.ok()) {
    RespondJson(*r, 400, OpenAiErrorBody(parsed.status()));
    return {};
  }
  const std::string model = body.value("model", "");
  const bool stream = body.value("stream", false);
  const json opts = body.value("stream_options", json::object());
  const bool include_usage = opts.is_object() && opts.value("include_usage", false);
  const std::optional<int64_t> ttl = TtlMs(body);
  Host* host = host_;
  return Spawn(r, [=, req = *std::move(parsed)](Job* job) {
    absl::StatusOr<InstanceHandle> inst = host->ResolveForInference(model, "llm", ttl, nullptr, job);
    if (!inst.ok()) {
      if (!IsClientGone(inst.status(), job)) {
        RespondJson(*r, HttpStatusOf(inst.status()), OpenAiErrorBody(inst.status()));
      }
      return;
    }
    const std::string identifier = host->Identifier(*inst);
    const int64_t ctx = host->ContextLength(*inst);
    const ModelSpec& spec = host->Spec(*inst);
    const json base = {{"id", RandomId(completions ? "cmpl-" : "chatcmpl-")},
                       {"object", completions ? "text_completion" : "chat.completion.chunk"},
                       {"created", NowSeconds()},
                       {"model", identifier},
                       {"system_fingerprint", identifier}};
    if (stream) {
      StreamObserver obs(r, base, completions, v0, include_usage, spec, ctx);
      absl::Status s = host->Predict(*inst, req, &obs, job);
      if (!s.ok()) RespondJson(*r, HttpStatusOf(s), OpenAiErrorBody(s));
      return;
    }
    CollectObserver obs(r);
    absl::Status s = host->Predict(*inst, req, &obs, job);
    if (!s.ok()) {
      RespondJson(*r, HttpStatusOf(s), OpenAiErrorBody(s));
      return;
    }
    const PredictionResult& res = obs.result();
    if (res.stats.stop_reason == "modelUnloaded") {
      RespondJson(*r, 500, {{"error", {{"message", "The model was unloaded during the prediction"},
                                       {"type", "server_error"}}}});
      return;
    }
    json out = base;
    out["object"] = completions ? "text_completion" : "chat.completion";
    json choice = {{"index", 0}, {"logprobs", nullptr},
                   {"finish_reason", FinishReason(res.stats.stop_reason)}};
    if (completions) {
      choice["text"] = res.content;
    } else {
      choice["message"] = {{"role", "assistant"},
                           {"content", res.content},
                           {"reasoning_content", res.reasoning},
                           {"tool_calls", ToolCallsJson(res.tool_calls)}};
    }
    out["choices"] = json::array({choice});
    out["usage"] = Usage(res.stats);
    out["stats"] = v0 ? V0Stats(res.stats) : json::object();
    if (v0) AddV0Blocks(spec, ctx, &out);
    RespondJson(*r, 200, out);
  });
}

// v0 and OpenAI embeddings share one body shape.
HttpHandleResult HttpApi::HandleEmbeddings(const json& body, std::shared_ptr<HttpResponder> r) {
  std::vector<std::string> inputs;
  const json input = body.value("input", json());
  if (input.is_string()) inputs.push_back(input.get<std::string>());
  for (const json& i : input.is_array() ? input : json::array()) {
    if (i.is_string()) inputs.push_back(i.get<std::string>());
  }
  if (inputs.empty()) {
    RespondJson(*r, 400, OpenAiErrorBody(absl::InvalidArgumentError(
                             "'input' field is required: a string or an array of strings")));
    return {};
  }
  const std::string model = body.value("model", "");
  const std::optional<int64_t> ttl = TtlMs(body);
  Host* host = host_;
  return Spawn(r, [=](Job* job) {
    absl::StatusOr<InstanceHandle> inst =
        host->ResolveForInference(model, "embedding", ttl, nullptr, job);
    if (!inst.ok()) {
      if (!IsClientGone(inst.status(), job)) {
        RespondJson(*r, HttpStatusOf(inst.status()), OpenAiErrorBody(inst.status()));
      }
      return;
    }
    json data = json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      absl::StatusOr<std::vector<float>> e = host->Embed(*inst, inputs[i]);
      if (!e.ok()) {
        RespondJson(*r, HttpStatusOf(e.status()), OpenAiErrorBody(e.status()));
        return;
      }
      tokens += CountTokens(inputs[i]);
      data.push_back({{"object", "embedding"}, {"embedding", *e}, {"index", i}});
    }
    RespondJson(*r, 200, {{"object", "list"},
                          {"data", data},
                          {"model", host->Identifier(*inst)},
                          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  });
}

}  // namespace lmgate::emulator
