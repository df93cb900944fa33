#include "tests/emulator/http_api.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/json.h"

namespace lmgate::emulator {

using nlohmann::json;

namespace {

constexpr char kJson[] = "application/json; charset=utf-8";

void RespondJson(HttpResponder& r, int status, const json& body) {
  r.Respond(status, kJson, body.dump());
}

std::string PathOf(const std::string& target) {
  const size_t q = target.find('?');
  return q == std::string::npos ? target : target.substr(0, q);
}

}  // namespace

int HttpStatusOf(const absl::Status& s) {
  if (auto p = GetPayload(s, kPayloadHttpStatus)) return std::stoi(*p);
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

json OpenAiErrorBody(const absl::Status& s) {
  json e = {{"message", std::string(s.message())}, {"type", "invalid_request_error"}};
  if (HttpStatusOf(s) >= 500) e["type"] = "server_error";
  const auto code = GetPayload(s, kPayloadErrorCode);
  if (code.has_value() && *code == "model_not_found") e["param"] = "model";
  if (s.code() == absl::StatusCode::kFailedPrecondition) e["param"] = "model";
  if (code.has_value() && *code != "internal_error" && *code != "invalid_request") e["code"] = *code;
  return {{"error", e}};
}

json V1ErrorBody(const absl::Status& s) {
  const auto code = GetPayload(s, kPayloadErrorCode);
  std::string type = code.value_or("");
  if (type.empty()) type = HttpStatusOf(s) >= 500 ? "internal_error" : "invalid_request";
  json e = {{"type", type}, {"message", std::string(s.message())}};
  if (type == "model_not_found") e["param"] = "model";
  return {{"error", e}};
}

HttpApi::HttpApi(Host* host, HttpApiOptions options) : host_(host), options_(std::move(options)) {}

HttpHandleResult HttpApi::Spawn(std::shared_ptr<HttpResponder> responder,
                                std::function<void(Job*)> work) {
  std::shared_ptr<Job> job = host_->NewJob();
  if (!host_->Spawn([job, work = std::move(work)] { work(job.get()); })) {
    RespondJson(*responder, 503, {{"error", "The emulator is shutting down"}});
    return {};
  }
  return {job, nullptr};
}

HttpHandleResult HttpApi::Handle(const HttpRequest& req, std::shared_ptr<HttpResponder> r) {
  if (options_.frames != nullptr && !absl::StartsWith(PathOf(req.target), "/__emulator/")) {
    options_.frames->RecordHttpRequest(req.method, req.target, req.headers, req.body);
  }
  try {
    return Route(req, r);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong JSON type (e.g. "model": 5). Parsing happens before any response.
    absl::Status s = absl::InvalidArgumentError(absl::StrCat("Invalid request body: ", e.what()));
    RespondJson(*r, 400, absl::StartsWith(PathOf(req.target), "/api/v1/") ? V1ErrorBody(s)
                                                                           : OpenAiErrorBody(s));
    return {};
  }
}

HttpHandleResult HttpApi::Route(const HttpRequest& req, std::shared_ptr<HttpResponder> r) {
  const std::string path = PathOf(req.target);
  const std::string& method = req.method;

  // ---- discovery probes and emulator control: never behind the token.
  if (path == "/lmstudio-greeting" && method == "GET") {
    host_->CountRequest(Interface::kCliStatus);
    RespondJson(*r, 200, {{"lmstudio", true}});
    return {};
  }
  if (path == "/lms-status" && method == "GET") {
    host_->CountRequest(Interface::kCliStatus);
    // [?] Real values unknown; `lms` only checks that package and version are strings.
    RespondJson(*r, 200, {{"package", "lmstudio-emulator"},
                          {"version", options_.emulator_version},
                          {"lmstudioVersion", options_.lmstudio_version}});
    return {};
  }
  if (absl::StartsWith(path, "/__emulator/")) {
    absl::StatusOr<json> parsed = req.body.empty() ? json::object()
                                                   : backends::ParseBoundedJson(req.body, "body");
    if (!parsed.ok()) {
      RespondJson(*r, 400, {{"error", std::string(parsed.status().message())}});
      return {};
    }
    json body = *std::move(parsed);
    if (path == "/__emulator/stats" && method == "GET") {
      RespondJson(*r, 200, host_->Stats());
    } else if (path == "/__emulator/reset" && method == "POST") {
      host_->ResetStats();
      RespondJson(*r, 200, host_->Stats());
    } else if (path == "/__emulator/faults" && (method == "GET" || method == "POST")) {
      if (method == "POST") {
        absl::Status s = host_->ApplyFaults(body);
        if (!s.ok()) {
          RespondJson(*r, 400, {{"error", std::string(s.message())}});
          return {};
        }
      }
      RespondJson(*r, 200, host_->faults().ToJson());
      if (method == "POST" && body.contains("refuse_connections_ms") &&
          body["refuse_connections_ms"].is_number() && options_.restart) {
        const int64_t ms = body["refuse_connections_ms"].get<int64_t>();
        const bool drop = body.value("drop_existing_connections", false);
        return {nullptr, [restart = options_.restart, ms, drop] { restart(ms, drop); }};
      }
    } else if (path == "/__emulator/frames" && (method == "GET" || method == "POST") &&
               options_.frames != nullptr) {
      if (method == "POST" && body.value("clear", false)) options_.frames->Clear();
      RespondJson(*r, 200, {{"frames", options_.frames->Frames()},
                            {"dropped", options_.frames->dropped()}});
    } else if (path == "/__emulator/settings" && (method == "GET" || method == "POST")) {
      if (method == "POST") {
        absl::Status s = host_->ApplySettings(body);
        if (!s.ok()) {
          RespondJson(*r, 400, {{"error", std::string(s.message())}});
          return {};
        }
      }
      RespondJson(*r, 200, host_->settings().ToJson());
    } else {
      RespondJson(*r, 404, {{"error", absl::StrCat("unknown control endpoint ", method, " ", path)}});
    }
    return {};
  }

  const bool openai = absl::StartsWith(path, "/v1/");
  const bool v0 = absl::StartsWith(path, "/api/v0/");
  const bool v1 = absl::StartsWith(path, "/api/v1/");
  if (openai || v0 || v1) {
    host_->CountRequest(openai ? Interface::kOpenAi : v0 ? Interface::kRestV0 : Interface::kRestV1);
    if (!options_.api_token.empty()) {
      const std::string want = absl::StrCat("Bearer ", options_.api_token);
      if (req.authorization != want) {
        // [3p] body; the status is most likely 401 [?].
        RespondJson(*r, 401,
                    {{"error",
                      {{"type", "invalid_request"},
                       {"code", "invalid_api_key"},
                       {"message", req.authorization.empty()
                                       ? "An LM Studio API token is required to make requests to "
                                         "this server. Provide it as 'Authorization: Bearer "
                                         "<token>'."
                                       : "The provided LM Studio API token is invalid."}}}});
        return {};
      }
    }
  }
  json body = json::object();
  if (method == "POST" && (openai || v0 || v1)) {
    // Bounded like any JSON parse: nlohmann copies and dumps recursively.
    absl::StatusOr<json> parsed =
        backends::ParseBoundedJson(req.body.empty() ? "{}" : req.body, "Request body");
    if (!parsed.ok() || !parsed->is_object()) {
      absl::Status s = parsed.ok()
                           ? absl::InvalidArgumentError("Request body is not a valid JSON object")
                           : parsed.status();
      RespondJson(*r, 400, v1 ? V1ErrorBody(s) : OpenAiErrorBody(s));
      return {};
    }
    body = *std::move(parsed);
  }
  auto injected = [&]() -> bool {
    std::optional<int> status = host_->TakeHttpErrorFault();
    if (!status.has_value()) return false;
    absl::Status s = WithPayload(
        absl::UnavailableError(absl::StrCat("Injected fault: HTTP ", *status)), kPayloadHttpStatus,
        std::to_string(*status));
    RespondJson(*r, *status, v1 ? V1ErrorBody(s) : OpenAiErrorBody(s));
    return true;
  };

  if (method == "GET" && path == "/v1/models") {
    if (injected()) return {};
    json data = json::array();
    if (host_->settings().jit_enabled) {
      for (const ModelSpec& m : host_->catalogue().models()) {
        data.push_back({{"id", m.model_key}, {"object", "model"}, {"owned_by", "organization_owner"}});
      }
    } else {
      for (const json& i : host_->ListLoaded("")) {
        data.push_back({{"id", i["identifier"]}, {"object", "model"},
                        {"owned_by", "organization_owner"}});
      }
    }
    RespondJson(*r, 200, {{"data", data}, {"object", "list"}});
    return {};
  }
  if (method == "POST" && (path == "/v1/chat/completions" || path == "/v1/completions" ||
                           path == "/api/v0/chat/completions" || path == "/api/v0/completions")) {
    if (injected()) return {};
    return HandleOpenAiStyle(path, body, v0, r);
  }
  if (method == "POST" && (path == "/v1/embeddings" || path == "/api/v0/embeddings")) {
    if (injected()) return {};
    return HandleEmbeddings(body, r);
  }
  if (method == "GET" && (path == "/api/v0/models" || absl::StartsWith(path, "/api/v0/models/"))) {
    if (injected()) return {};
    const std::string wanted = path.size() > 15 ? path.substr(15) : "";
    json data = json::array();
    for (const json& row : V0Models()) {
      if (wanted.empty() || absl::EqualsIgnoreCase(row["id"].get<std::string>(), wanted)) {
        data.push_back(row);
      }
    }
    if (wanted.empty()) {
      RespondJson(*r, 200, {{"object", "list"}, {"data", data}});
    } else if (data.empty()) {
      // [?] Wording of the v0 single-model 404.
      absl::Status s = WithPayload(
          absl::NotFoundError(absl::StrCat("Model \"", wanted, "\" not found")), kPayloadErrorCode,
          "model_not_found");
      RespondJson(*r, 404, OpenAiErrorBody(s));
    } else {
      RespondJson(*r, 200, data[0]);
    }
    return {};
  }
  if (method == "GET" && path == "/api/v1/models") {
    if (injected()) return {};
    RespondJson(*r, 200, V1Models());
    return {};
  }
  if (method == "POST" && path == "/api/v1/models/load") {
    if (injected()) return {};
    return HandleV1Load(body, r);
  }
  if (method == "POST" && path == "/api/v1/models/unload") {
    if (injected()) return {};
    const std::string id = body.value("instance_id", "");
    absl::Status s = host_->Unload(id);
    if (!s.ok()) {
      RespondJson(*r, HttpStatusOf(s), V1ErrorBody(s));
    } else {
      RespondJson(*r, 200, {{"instance_id", id}});
    }
    return {};
  }
  if (method == "POST" && path == "/api/v1/chat") {
    if (injected()) return {};
    return HandleV1Chat(body, r);
  }
  // LM Studio's Express fallback answers 200 with this body ("Returning 200 anyway").
  RespondJson(*r, 200,
              {{"error", absl::StrCat("Unexpected endpoint or method. (", method, " ", path, ")")}});
  return {};
}

json HttpApi::V0Model(const ModelSpec& spec, const std::vector<InstanceHandle>& loaded) const {
  json m = {{"id", spec.model_key},
            {"object", "model"},
            {"type", RestV0Type(spec)},
            {"publisher", spec.publisher},
            {"arch", spec.architecture},
            {"compatibility_type", CompatibilityType(spec)},
            {"quantization", spec.quantization_name},
            {"state", loaded.empty() ? "not-loaded" : "loaded"},
            {"max_context_length", spec.max_context_length}};
  if (!loaded.empty()) m["loaded_context_length"] = host_->ContextLength(loaded.front());
  json caps = json::array();
  if (spec.trained_for_tool_use) caps.push_back("tool_use");
  if (spec.is_llm()) m["capabilities"] = caps;
  return m;
}

json HttpApi::V0Models() const {
  json rows = json::array();
  const bool identifier_rows = host_->settings().v0_identifier_rows;
  for (const auto& [spec, loaded] : host_->Models()) {
    if (!identifier_rows) {
      rows.push_back(V0Model(*spec, loaded));
      continue;
    }
    // Like the real host: an instance not named by its model key is a row of its own.
    std::vector<InstanceHandle> by_key;
    std::vector<InstanceHandle> own_rows;
    for (const InstanceHandle& i : loaded) {
      (host_->Identifier(i) == spec->model_key ? by_key : own_rows).push_back(i);
    }
    rows.push_back(V0Model(*spec, by_key));
    for (const InstanceHandle& i : own_rows) {
      json row = V0Model(*spec, {i});
      row["id"] = host_->Identifier(i);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

json HttpApi::V1Models() const {
  json models = json::array();
  for (const auto& [spec, loaded] : host_->Models()) {
    json instances = json::array();
    for (const InstanceHandle& i : loaded) {
      json config = {{"context_length", host_->ContextLength(i)}};
      if (std::optional<int> p = host_->ReportedParallel(i)) config["parallel"] = *p;
      instances.push_back({{"id", host_->Identifier(i)}, {"config", config}});
    }
    json m = {{"type", spec->type},
              {"publisher", spec->publisher},
              {"key", spec->model_key},
              {"display_name", spec->display_name},
              {"architecture", spec->architecture},
              {"quantization", spec->quantization_name.empty()
                                   ? json(nullptr)
                                   : json{{"name", spec->quantization_name},
                                          {"bits_per_weight", spec->quantization_bits}}},
              {"size_bytes", spec->size_bytes},
              {"params_string", spec->params_string},
              {"loaded_instances", instances},
              {"max_context_length", spec->max_context_length},
              {"format", CompatibilityType(*spec)},
              {"variants", json::array({spec->VariantName()})},
              {"selected_variant", spec->VariantName()}};
    if (spec->is_llm()) {
      json caps = {{"vision", spec->vision}, {"trained_for_tool_use", spec->trained_for_tool_use}};
      if (spec->reasoning) {
        caps["reasoning"] = {{"allowed_options", {"off", "on"}}, {"default", "on"}};
      }
      m["capabilities"] = caps;
    }
    models.push_back(std::move(m));
  }
  return {{"models", models}};
}

}  // namespace lmgate::emulator
