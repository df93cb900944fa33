// REST API v1 (§3): POST /api/v1/chat (plain and SSE with named events) and /api/v1/models/load.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/emulator/http_api.h"
#include "tests/emulator/http_internal.h"

namespace lmgate::emulator {

using nlohmann::json;
using namespace http_internal;  // NOLINT(build/namespaces): private helpers of this component

namespace {

// Writes `event: <type>` + `data: {"type":<type>,...}` frames. chat.start is sent as soon as the
// instance id is known (before a JIT load, so model_load.* events can follow it).
class V1Stream : public LoadObserver, public PredictionObserver {
 public:
  V1Stream(std::shared_ptr<HttpResponder> r, bool stream) : r_(std::move(r)), stream_(stream) {}

  bool started() const { return started_; }
  void StartChat(const std::string& instance_id) {
    if (started_ || !stream_) return;
    started_ = true;
    r_->StartStream("text/event-stream");
    Event("chat.start", {{"model_instance_id", instance_id}});
  }
  void Event(const std::string& type, json data) {
    if (!stream_) return;
    data["type"] = type;
    r_->WriteChunk(absl::StrCat("event: ", type, "\ndata: ", data.dump(), "\n\n"));
  }
  double load_seconds() const { return load_seconds_; }

  // LoadObserver
  void OnAlreadyLoaded(const json& info) override { StartChat(info.value("identifier", "")); }
  void OnStartLoading(const std::string& id, const json&) override {
    StartChat(id);
    load_start_ = absl::Now();
    Event("model_load.start", {{"model_instance_id", id}});
  }
  void OnProgress(double p) override { Event("model_load.progress", {{"progress", p}}); }
  void OnLoaded(const json&) override {
    load_seconds_ = absl::ToDoubleSeconds(absl::Now() - load_start_);
    Event("model_load.end", {{"load_time_seconds", load_seconds_}});
  }

  // PredictionObserver
  void OnPromptProgress(double progress, int64_t) override {
    if (progress == 0) {
      Event("prompt_processing.start", json::object());
    } else {
      Event("prompt_processing.progress", {{"progress", progress}});
      Event("prompt_processing.end", json::object());
    }
  }
  void OnFragment(const Fragment& f) override {
    if (f.reasoning_type == "reasoningStartTag") {
      Event("reasoning.start", json::object());
    } else if (f.reasoning_type == "reasoningEndTag") {
      Event("reasoning.end", json::object());
    } else if (f.reasoning_type == "reasoning") {
      Event("reasoning.delta", {{"content", f.content}});
    } else {
      if (!message_started_) Event("message.start", json::object());
      message_started_ = true;
      Event("message.delta", {{"content", f.content}});
    }
  }
  void OnDropConnection() override { r_->Drop(); }
  void OnDone(const PredictionResult& result) override {
    if (message_started_) Event("message.end", json::object());
    result_ = result;
  }
  const PredictionResult& result() const { return result_; }

 private:
  std::shared_ptr<HttpResponder> r_;
  const bool stream_;
  bool started_ = false;
  bool message_started_ = false;
  absl::Time load_start_;
  double load_seconds_ = 0;
  PredictionResult result_;
};

}  // namespace

HttpHandleResult HttpApi::HandleV1Chat(const json& body, std::shared_ptr<HttpResponder> r) {
  const std::string model = body.value("model", "");
  if (model.empty()) {
    RespondJson(*r, 400, V1ErrorBody(absl::InvalidArgumentError("'model' is required")));
    return {};
  }
  PredictionRequest req;
  std::vector<ChatMessage> history;
  const std::string previous = body.value("previous_response_id", "");
  if (!previous.empty()) {
    absl::MutexLock l(&mu_);
    auto it = conversations_.find(previous);
    if (it == conversations_.end()) {
      RespondJson(*r, 400, V1ErrorBody(absl::InvalidArgumentError(
                               absl::StrCat("Unknown previous_response_id \"", previous, "\""))));
      return {};
    }
    history = it->second;
  }
  if (body.contains("system_prompt") && body["system_prompt"].is_string() &&
      (history.empty() || history.front().role != "system")) {
    history.insert(history.begin(), {"system", body["system_prompt"].get<std::string>()});
  }
  const json input = body.value("input", json());
  std::vector<std::string> texts;
  if (input.is_string()) texts.push_back(input.get<std::string>());
  for (const json& i : input.is_array() ? input : json::array()) {
    const std::string type = i.is_object() ? i.value("type", "") : "";
    if ((type == "message" || type == "text") && i.contains("content") && i["content"].is_string()) {
      texts.push_back(i["content"].get<std::string>());
    }
  }
  if (texts.empty()) {
    RespondJson(*r, 400, V1ErrorBody(absl::InvalidArgumentError(
                             "'input' is required: a string or an array of message items")));
    return {};
  }
  history.push_back({"user", absl::StrJoin(texts, "\n")});
  req.prompt.messages = history;
  const json max = body.value("max_output_tokens", json());
  if (max.is_number_integer() && max.get<int64_t>() >= 0) req.max_tokens = max.get<int64_t>();
  if (body.value("reasoning", json("on")) == "off") req.generation.allow_reasoning = false;
  const json seed = body.value("seed", json());
  if (seed.is_number_integer() && seed.get<int64_t>() >= 0) {
    req.generation.seed = seed.get<uint64_t>();
  }
  const bool stream = body.value("stream", false);
  const bool store = body.value("store", true);
  const std::string response_id = store ? RandomId("resp_") : "";
  Host* host = host_;
  return Spawn(r, [=](Job* job) {
    V1Stream events(r, stream);
    auto fail = [&](const absl::Status& s) {
      if (IsClientGone(s, job)) return;
      if (events.started()) {
        events.Event("error", V1ErrorBody(s));
        r->EndStream();
      } else {
        RespondJson(*r, HttpStatusOf(s), V1ErrorBody(s));
      }
    };
    absl::StatusOr<InstanceHandle> inst =
        host->ResolveForInference(model, "llm", std::nullopt, &events, job);
    if (!inst.ok()) return fail(inst.status());
    const std::string id = host->Identifier(*inst);
    events.StartChat(id);
    absl::Status s = host->Predict(*inst, req, &events, job);
    if (!s.ok()) return fail(s);
    const PredictionResult& res = events.result();
    if (res.stats.stop_reason == "modelUnloaded") {
      return fail(absl::InternalError("The model was unloaded during the prediction"));
    }
    json output = json::array();
    if (!res.reasoning.empty()) output.push_back({{"type", "reasoning"}, {"content", res.reasoning}});
    output.push_back({{"type", "message"}, {"content", res.content}});
    json stats = {{"input_tokens", res.stats.prompt_tokens},
                  {"total_output_tokens", res.stats.predicted_tokens},
                  {"reasoning_output_tokens", res.stats.reasoning_tokens},
                  {"tokens_per_second", res.stats.tokens_per_second},
                  {"time_to_first_token_seconds", res.stats.time_to_first_token_sec}};
    if (events.load_seconds() > 0) stats["model_load_time_seconds"] = events.load_seconds();
    json result = {{"model_instance_id", id}, {"output", output}, {"stats", stats}};
    if (!response_id.empty()) {
      result["response_id"] = response_id;
      std::vector<ChatMessage> convo = req.prompt.messages;
      convo.push_back({"assistant", res.content});
      absl::MutexLock l(&mu_);
      if (conversations_.size() >= 1000) conversations_.erase(conversations_.begin());  // bounded
      conversations_[response_id] = std::move(convo);
    }
    if (stream) {
      events.Event("chat.end", {{"result", result}});
      r->EndStream();
    } else {
      RespondJson(*r, 200, result);
    }
  });
}

HttpHandleResult HttpApi::HandleV1Load(const json& body, std::shared_ptr<HttpResponder> r) {
  LoadRequest req;
  req.model = body.value("model", "");
  const ModelSpec* spec = host_->catalogue().Find(req.model);
  if (spec == nullptr) {
    absl::Status s = WithPayload(
        absl::NotFoundError(absl::StrCat("Model \"", req.model, "\" not found")),
        kPayloadErrorCode, "model_not_found");
    RespondJson(*r, 404, V1ErrorBody(s));
    return {};
  }
  const std::string prefix = spec->is_llm() ? "llm.load." : "embedding.load.";
  auto set = [&](const char* field, const std::string& key) {
    if (body.contains(field) && !body[field].is_null()) req.config.Set(key, body[field]);
  };
  set("context_length", prefix + "contextLength");
  set("eval_batch_size", "llm.load.llama.evalBatchSize");
  set("flash_attention", "llm.load.llama.flashAttention");
  set("num_experts", "llm.load.numExperts");
  set("offload_kv_cache_to_gpu", "llm.load.offloadKVCacheToGpu");
  set("parallel", "llm.load.numParallelSessions");  // [?] extension, mirrors `lms load --parallel`
  // [?] The docs list no ttl/identifier for v1 load; the emulator accepts them as extensions.
  if (body.contains("identifier") && body["identifier"].is_string()) {
    req.identifier = body["identifier"].get<std::string>();
  }
  if (body.contains("ttl") && body["ttl"].is_number() && body["ttl"].get<double>() > 0) {
    req.ttl_ms = static_cast<int64_t>(body["ttl"].get<double>() * 1000);
  }
  const bool echo = body.value("echo_load_config", false);
  Host* host = host_;
  return Spawn(r, [=](Job* job) {
    const absl::Time start = absl::Now();
    absl::StatusOr<InstanceHandle> inst = host->Load(req, nullptr, job);
    if (!inst.ok()) {
      if (!IsClientGone(inst.status(), job)) {
        RespondJson(*r, HttpStatusOf(inst.status()), V1ErrorBody(inst.status()));
      }
      return;
    }
    json out = {{"type", spec->type},
                {"instance_id", host->Identifier(*inst)},
                {"load_time_seconds", absl::ToDoubleSeconds(absl::Now() - start)},
                {"status", "loaded"}};
    if (echo) {
      json cfg = {{"context_length", host->ContextLength(*inst)}};
      if (std::optional<int> p = host->ReportedParallel(*inst)) cfg["parallel"] = *p;
      out["load_config"] = cfg;
    }
    RespondJson(*r, 200, out);
  });
}

}  // namespace lmgate::emulator
