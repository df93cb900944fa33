#include "tests/emulator/sdk_session.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/json.h"
#include "spdlog/spdlog.h"

namespace lmgate::emulator {

using nlohmann::json;

namespace {

bool IsAuthPacket(const json& m) {
  auto short_string = [&](const char* key) {
    return m.contains(key) && m[key].is_string() && m[key].get<std::string>().size() <= 256;
  };
  return m.is_object() && m.contains("authVersion") && m["authVersion"] == 1 &&
         short_string("clientIdentifier") && short_string("clientPasskey");
}

json FragmentJson(const Fragment& f) {
  return {{"content", f.content},
          {"tokensCount", f.tokens_count},
          {"containsDrafted", false},
          {"reasoningType", f.reasoning_type},
          {"isStructural", f.is_structural}};
}

json ToolCallRequestJson(const ToolCall& c) {
  return {{"type", "function"}, {"id", c.id}, {"name", c.name}, {"arguments", c.arguments}};
}

}  // namespace

std::vector<ChatMessage> MessagesFromSdkHistory(const json& history) {
  std::vector<ChatMessage> out;
  if (!history.is_object() || !history.contains("messages")) return out;
  for (const json& m : history["messages"]) {
    if (!m.is_object()) continue;
    ChatMessage msg;
    msg.role = m.value("role", "user");
    std::vector<std::string> texts;
    const json content = m.value("content", json::array());
    if (content.is_string()) texts.push_back(content.get<std::string>());
    for (const json& part : content.is_array() ? content : json::array()) {
      const std::string type = part.value("type", "");
      if (type == "text") {
        texts.push_back(part.value("text", ""));
      } else if (type == "toolCallRequest" && part.contains("toolCallRequest")) {
        const json& r = part["toolCallRequest"];
        msg.tool_calls.push_back({r.value("id", ""), r.value("name", ""),
                                  r.value("arguments", json::object())});
      } else if (type == "toolCallResult") {
        ChatMessage result;
        result.role = "tool";
        result.text = part.value("content", "");
        result.tool_call_id = part.value("toolCallId", "");
        out.push_back(std::move(result));
      }
    }
    if (msg.role == "tool" && texts.empty()) continue;  // expanded above
    msg.text = absl::StrJoin(texts, "\n");
    out.push_back(std::move(msg));
  }
  return out;
}

namespace {

PredictionRequest PredictionFromSdk(const json& param) {
  PredictionRequest req;
  KvConfig kv = KvConfig::FromStack(param.value("predictionConfigStack", json::object()));
  if (param.contains("rawPrompt")) {
    req.prompt.raw_prompt = param.value("rawPrompt", "");
  } else {
    req.prompt.messages = MessagesFromSdkHistory(param.value("history", json::object()));
    if (const json* tools = kv.Get("llm.prediction.tools");
        tools != nullptr && tools->is_object() && tools->value("type", "") == "toolArray") {
      req.prompt.tools = ToolsFromJson(tools->value("tools", json::array()));
    }
    if (const json* choice = kv.Get("llm.prediction.toolChoice");
        choice != nullptr && choice->is_object()) {
      req.generation.tool_choice = choice->value("mode", "auto");
    }
  }
  if (auto max = kv.Number("llm.prediction.maxPredictedTokens")) {
    req.max_tokens = static_cast<int64_t>(*max);
  }
  if (const json* stops = kv.Get("llm.prediction.stopStrings"); stops && stops->is_array()) {
    for (const json& s : *stops) {
      if (s.is_string()) req.stop_strings.push_back(s.get<std::string>());
    }
  }
  if (auto policy = kv.String("llm.prediction.contextOverflowPolicy")) req.overflow_policy = *policy;
  if (auto seed = kv.Number("llm.prediction.seed"); seed && *seed >= 0) {
    req.generation.seed = static_cast<uint64_t>(*seed);
  }
  if (const json* s = kv.Get("llm.prediction.structured");
      s != nullptr && s->is_object() && s->value("type", "") == "json" && s->contains("jsonSchema")) {
    req.generation.json_schema = (*s)["jsonSchema"];
  }
  if (auto thinking = kv.Bool("llm.prediction.reasoning.enableThinking")) {
    req.generation.allow_reasoning = *thinking;
  }
  req.prediction_config = std::move(kv);
  return req;
}

// Streams load events as loadModel packets (resolved/progress/success) or getOrLoad packets.
class ChannelLoadObserver : public LoadObserver {
 public:
  ChannelLoadObserver(std::shared_ptr<SdkSession> s, int64_t id, bool get_or_load)
      : session_(std::move(s)), id_(id), get_or_load_(get_or_load) {}
  void OnResolved(const json& info) override {
    if (!get_or_load_) session_->SendChannel(id_, {{"type", "resolved"}, {"info", info}});
  }
  void OnAlreadyLoaded(const json& info) override {
    if (get_or_load_) session_->SendChannel(id_, {{"type", "alreadyLoaded"}, {"info", info}});
  }
  void OnStartLoading(const std::string& identifier, const json& info) override {
    if (get_or_load_) {
      session_->SendChannel(
          id_, {{"type", "startLoading"}, {"identifier", identifier}, {"info", info}});
    }
  }
  void OnUnloadingOther(const json& info) override {
    if (get_or_load_) {
      session_->SendChannel(id_, {{"type", "unloadingOtherJITModel"}, {"info", info}});
    }
  }
  void OnProgress(double p) override {
    session_->SendChannel(id_, {{"type", get_or_load_ ? "loadProgress" : "progress"},
                                {"progress", p}});
  }
  void OnLoaded(const json& info) override {
    session_->SendChannel(id_, {{"type", get_or_load_ ? "loadSuccess" : "success"},
                                {"info", info}});
  }

 private:
  std::shared_ptr<SdkSession> session_;
  int64_t id_;
  bool get_or_load_;
};

class ChannelPredictionObserver : public PredictionObserver {
 public:
  ChannelPredictionObserver(std::shared_ptr<SdkSession> s, int64_t id)
      : session_(std::move(s)), id_(id) {}
  void OnPromptProgress(double progress, int64_t prompt_tokens) override {
    const int64_t processed = progress >= 1 ? prompt_tokens : 0;
    session_->SendChannel(
        id_, {{"type", "promptProcessingProgress"},
              {"progress", progress},
              {"details", {{"cachedTokenCount", 0},
                           {"totalPromptTokenCount", prompt_tokens},
                           {"processedPromptTokenCount", processed},
                           {"unprocessedPromptTokenCount", prompt_tokens - processed}}}});
  }
  void OnFragment(const Fragment& f) override {
    session_->SendChannel(id_, {{"type", "fragment"}, {"fragment", FragmentJson(f)}});
  }
  void OnToolCallStart(const ToolCall& c) override {
    session_->SendChannel(id_, {{"type", "toolCallGenerationStart"}, {"toolCallId", c.id}});
  }
  void OnToolCallName(const ToolCall& c) override {
    session_->SendChannel(id_, {{"type", "toolCallGenerationNameReceived"}, {"name", c.name}});
  }
  void OnToolCallArguments(const std::string& fragment) override {
    session_->SendChannel(
        id_, {{"type", "toolCallGenerationArgumentFragmentGenerated"}, {"content", fragment}});
  }
  void OnToolCallEnd(const ToolCall& c, const std::string& raw) override {
    session_->SendChannel(id_, {{"type", "toolCallGenerationEnd"},
                                {"toolCallRequest", ToolCallRequestJson(c)},
                                {"rawContent", raw}});
  }
  void OnDropConnection() override { session_->DropConnection(); }
  void OnDone(const PredictionResult& r) override {
    session_->SendChannel(id_, {{"type", "success"},
                                {"stats", r.stats.ToSdkJson()},
                                {"modelInfo", r.model_info},
                                {"loadModelConfig", r.load_config},
                                {"predictionConfig", r.prediction_config}});
  }

 private:
  std::shared_ptr<SdkSession> session_;
  int64_t id_;
};

}  // namespace

json SerializeError(const absl::Status& status) {
  std::string title(status.message());
  if (title.empty()) title = status.ToString();
  json e = {{"title", title}, {"rootTitle", title}};
  if (auto display = GetPayload(status, kPayloadDisplayData)) {
    json d = json::parse(*display, nullptr, false);
    if (!d.is_discarded()) e["displayData"] = d;
  }
  return e;
}

// ---------------------------------------------------------------- authenticator

SdkAuthenticator::SdkAuthenticator(std::string api_token) {
  // sk-lm-<8 alnum>:<20 alnum>; the Emulator validated the shape.
  if (!api_token.empty()) {
    const size_t colon = api_token.find(':');
    token_identifier_ = api_token.substr(6, colon - 6);
    token_passkey_ = api_token.substr(colon + 1);
  }
}

absl::Status SdkAuthenticator::Authenticate(const std::string& id, const std::string& passkey) {
  absl::MutexLock l(&mu_);
  if (!token_identifier_.empty()) {
    // [?] The real host's rejection text is not captured.
    if (id != token_identifier_ || passkey != token_passkey_) {
      return absl::PermissionDeniedError(
          "Invalid LM Studio API token. An LM Studio API token is required to make requests to "
          "this server.");
    }
  }
  Client& c = clients_[id];
  if (c.sockets > 0 && c.passkey != passkey) {
    return absl::PermissionDeniedError(absl::StrCat("Invalid client passkey for client ", id));
  }
  c.passkey = passkey;
  ++c.sockets;
  return absl::OkStatus();
}

void SdkAuthenticator::Release(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(id);
  if (it != clients_.end() && --it->second.sockets <= 0) clients_.erase(it);
}

// ---------------------------------------------------------------- session

SdkSession::SdkSession(Host* host, SdkAuthenticator* auth, SdkServerInfo info, std::string ns,
                       std::shared_ptr<SdkTransport> transport, FrameLog* frames)
    : host_(host), auth_(auth), info_(std::move(info)), ns_(std::move(ns)),
      transport_(std::move(transport)), frames_(frames) {
  host_->OnWsOpened();
}

SdkSession::~SdkSession() { OnClose(); }

void SdkSession::Send(const json& message) {
  std::string frame = message.dump();
  if (frames_ != nullptr && frames_->log_outgoing()) frames_->RecordWsFrame(false, ns_, frame);
  transport_->Send(std::move(frame));
}

void SdkSession::SendChannel(int64_t id, json message) {
  Send({{"type", "channelSend"}, {"channelId", id}, {"message", std::move(message)}});
}

void SdkSession::DropConnection() { transport_->Close(/*abrupt=*/true); }

void SdkSession::OnClose() {
  std::map<int64_t, std::shared_ptr<Job>> channels;
  {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    closed_ = true;
    channels.swap(channels_);
  }
  for (auto& [id, job] : channels) host_->Cancel(*job);
  if (authenticated_) auth_->Release(client_identifier_);
  host_->OnWsClosed();
}

void SdkSession::OnMessage(const std::string& text) {
  if (frames_ != nullptr) frames_->RecordWsFrame(true, ns_, text);
  // Bounded like any JSON parse: nlohmann copies and dumps recursively, and Dispatch copies.
  absl::StatusOr<json> parsed = backends::ParseBoundedJson(text, "the message");
  if (!parsed.ok() && authenticated_) {
    if (warnings_sent_ < 5) {
      ++warnings_sent_;
      Send({{"type", "communicationWarning"},
            {"warning", absl::StrCat("Received invalid message from client (",
                                     parsed.status().message(), "): ", text.substr(0, 200))}});
    }
    return;
  }
  json m = parsed.ok() ? *std::move(parsed) : json(json::value_t::discarded);
  if (!authenticated_) {
    // The reference server ignores anything that is not a valid auth packet.
    if (auth_failed_ || !IsAuthPacket(m)) return;
    const std::string id = m["clientIdentifier"].get<std::string>();
    absl::Status s = auth_->Authenticate(id, m["clientPasskey"].get<std::string>());
    if (!s.ok()) {
      auth_failed_ = true;
      Send({{"success", false}, {"error", std::string(s.message())}});
      transport_->Close(/*abrupt=*/false);
      return;
    }
    authenticated_ = true;
    client_identifier_ = id;
    Send({{"success", true}});
    return;
  }
  try {
    Dispatch(m, text);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type. Fail the call or channel so the client does not hang.
    const json error = SerializeError(
        absl::InvalidArgumentError(absl::StrCat("Invalid message or parameter: ", e.what())));
    const json type = m.is_object() && m.contains("type") ? m["type"] : json();
    if (type == "rpcCall" && m.contains("callId")) {
      Send({{"type", "rpcError"}, {"callId", m["callId"]}, {"error", error}});
    } else if (type == "channelCreate" && m.contains("channelId")) {
      Send({{"type", "channelError"}, {"channelId", m["channelId"]}, {"error", error}});
    } else {
      Send({{"type", "communicationWarning"}, {"warning", error["title"]}});
    }
  }
}

void SdkSession::Dispatch(const json& m, const std::string& text) {
  const std::string type = m.is_object() ? m.value("type", "") : "";
  if (type == "rpcCall" && m.contains("callId")) {
    host_->CountRequest(Interface::kSdk);
    HandleRpc(m.value("endpoint", ""), m["callId"], m.value("parameter", json()));
  } else if (type == "channelCreate" && m.contains("channelId") && m["channelId"].is_number()) {
    host_->CountRequest(Interface::kSdk);
    HandleChannel(m.value("endpoint", ""), m["channelId"].get<int64_t>(),
                  m.value("creationParameter", json()));
  } else if (type == "channelSend" && m.contains("channelId") && m["channelId"].is_number()) {
    const json msg = m.value("message", json::object());
    std::shared_ptr<Job> job;
    {
      absl::MutexLock l(&mu_);
      auto it = channels_.find(m["channelId"].get<int64_t>());
      if (it != channels_.end()) job = it->second;
    }
    if (job != nullptr && msg.is_object() && msg.value("type", "") == "cancel") host_->Cancel(*job);
  } else if (type == "keepAlive") {
    Send({{"type", "keepAliveAck"}});
  } else if (type == "signalSubscribe" || type == "writableSignalSubscribe") {
    Send({{"type", type == "signalSubscribe" ? "signalError" : "writableSignalError"},
          {"subscribeId", m.value("subscribeId", json(0))},
          {"error", SerializeError(absl::UnimplementedError(absl::StrCat(
                        "Signal endpoint \"", m.value("endpoint", ""),
                        "\" is not supported by the emulator")))}});
  } else if (type == "channelAck" || type == "signalUnsubscribe" ||
             type == "writableSignalUnsubscribe" || type == "writableSignalUpdate") {
    // Nothing to do: no ACKs requested, no signals served.
  } else if (type == "communicationWarning") {
    spdlog::warn("emulator: client communicationWarning on /{}: {}", ns_, m.value("warning", ""));
  } else if (warnings_sent_ < 5) {
    ++warnings_sent_;
    Send({{"type", "communicationWarning"},
          {"warning", absl::StrCat("Received invalid message from client: ", text.substr(0, 200))}});
  }
}

void SdkSession::HandleRpc(const std::string& endpoint, const json& call_id, const json& param) {
  absl::Status error;
  bool void_result = false;
  json result = Rpc(endpoint, param, &error, &void_result);
  if (!error.ok()) {
    Send({{"type", "rpcError"}, {"callId", call_id}, {"error", SerializeError(error)}});
  } else if (void_result) {
    Send({{"type", "rpcResult"}, {"callId", call_id}});
  } else {
    Send({{"type", "rpcResult"}, {"callId", call_id}, {"result", std::move(result)}});
  }
}

void SdkSession::StartChannelJob(int64_t id, std::function<absl::Status(Job*)> work) {
  std::shared_ptr<Job> job = host_->NewJob();
  {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    if (channels_.count(id) > 0) {
      Send({{"type", "communicationWarning"},
            {"warning", absl::StrCat("Channel ", id, " already exists")}});
      return;
    }
    channels_[id] = job;
  }
  auto self = shared_from_this();
  const bool spawned = host_->Spawn([self, id, job, work = std::move(work)] {
    absl::Status s = work(job.get());
    self->FinishChannel(id, job.get(), s);
  });
  if (!spawned) FinishChannel(id, job.get(), absl::UnavailableError("The host is shutting down"));
}

void SdkSession::FinishChannel(int64_t id, const Job* job, const absl::Status& status) {
  if (status.ok()) {
    Send({{"type", "channelClose"}, {"channelId", id}});
  } else {
    Send({{"type", "channelError"}, {"channelId", id}, {"error", SerializeError(status)}});
  }
  absl::MutexLock l(&mu_);
  auto it = channels_.find(id);
  if (it != channels_.end() && it->second.get() == job) channels_.erase(it);
}

void SdkSession::HandleChannel(const std::string& endpoint, int64_t id, const json& param) {
  const bool model_ns = ns_ == "llm" || ns_ == "embedding";
  auto fail = [&](const absl::Status& s) {
    Send({{"type", "channelError"}, {"channelId", id}, {"error", SerializeError(s)}});
  };
  if (!model_ns) {
    fail(absl::UnimplementedError(absl::StrCat("Unknown channel endpoint \"", endpoint,
                                               "\" in namespace \"", ns_, "\"")));
    return;
  }
  if (!param.is_object()) {
    fail(absl::InvalidArgumentError(absl::StrCat("Invalid creation parameter for ", endpoint)));
    return;
  }
  auto self = shared_from_this();
  if (endpoint == "loadModel" || endpoint == "getOrLoad") {
    const bool get_or_load = endpoint == "getOrLoad";
    LoadRequest req;
    req.model = param.value(get_or_load ? "identifier" : "modelKey", "");
    if (!get_or_load && param.contains("identifier") && param["identifier"].is_string()) {
      req.identifier = param["identifier"].get<std::string>();
    }
    const char* ttl_key = get_or_load ? "loadTtlMs" : "ttlMs";
    if (param.contains(ttl_key) && param[ttl_key].is_number()) {
      req.ttl_ms = param[ttl_key].get<int64_t>();
    }
    req.config = KvConfig::FromStack(param.value("loadConfigStack", json::object()));
    const ModelSpec* spec = host_->catalogue().Find(req.model);
    if (spec != nullptr && spec->type != ns_) {
      json display = {{"code", "generic.domainMismatch"},
                      {"path", spec->path},
                      {"actualDomain", spec->type},
                      {"expectedDomain", ns_}};
      fail(WithPayload(absl::InvalidArgumentError(absl::StrCat(
                           "Model \"", req.model, "\" is a ", spec->type, " model, not ", ns_)),
                       kPayloadDisplayData, display.dump()));
      return;
    }
    StartChannelJob(id, [self, req, get_or_load, id, host = host_](Job* job) {
      ChannelLoadObserver obs(self, id, get_or_load);
      absl::StatusOr<InstanceHandle> inst =
          get_or_load ? host->GetOrLoad(req, &obs, job) : host->Load(req, &obs, job);
      return inst.status();
    });
    return;
  }
  if (ns_ == "llm" && (endpoint == "predict" || endpoint == "completeRawText")) {
    absl::StatusOr<InstanceHandle> inst =
        host_->FindBySpecifier(param.value("modelSpecifier", json::object()), ns_);
    if (!inst.ok()) {
      fail(inst.status());
      return;
    }
    PredictionRequest req = PredictionFromSdk(param);
    if (endpoint == "completeRawText") req.prompt.raw_prompt = param.value("rawPrompt", "");
    StartChannelJob(id, [self, req = std::move(req), inst = *inst, id, host = host_](Job* job) {
      ChannelPredictionObserver obs(self, id);
      return host->Predict(inst, req, &obs, job);
    });
    return;
  }
  fail(absl::UnimplementedError(absl::StrCat("Unknown channel endpoint \"", endpoint,
                                             "\" in namespace \"", ns_, "\"")));
}

}  // namespace lmgate::emulator
