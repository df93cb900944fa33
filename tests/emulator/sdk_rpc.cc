// SdkSession::Rpc: the rpc endpoints of the llm, embedding and system namespaces (§1.5), and
// repository/lmLinkStatus.
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "tests/emulator/sdk_session.h"

namespace lmgate::emulator {

using nlohmann::json;

json SdkSession::Rpc(const std::string& endpoint, const json& param, absl::Status* error,
                     bool* void_result) {
  auto unknown = [&] {
    *error = absl::UnimplementedError(
        absl::StrCat("Unknown RPC endpoint \"", endpoint, "\" in namespace \"", ns_, "\""));
    return json();
  };
  auto void_ok = [&] {
    *void_result = true;
    return json();
  };
  const json p = param.is_object() ? param : json::object();

  if (ns_ == "system") {
    if (endpoint == "listDownloadedModels") {
      json out = json::array();
      for (const ModelSpec& m : host_->catalogue().models()) out.push_back(ModelInfoJson(m));
      return out;
    }
    if (endpoint == "listDownloadedModelVariants") {
      const ModelSpec* m = host_->catalogue().Find(p.value("modelKey", ""));
      if (m == nullptr) {
        *error = absl::NotFoundError(
            absl::StrCat("Cannot find model with key \"", p.value("modelKey", ""), "\""));
        return json();
      }
      return json::array({ModelInfoJson(*m)});
    }
    if (endpoint == "version") return {{"version", info_.version}, {"build", info_.build}};
    if (endpoint == "info") {
      return {{"pid", static_cast<int64_t>(getpid())}, {"isDaemon", true},
              {"version", info_.version}};
    }
    if (endpoint == "getExperimentFlags") return json::array();
    // [?] The emulator has one always-on server: start/stop/shutdown are accepted and ignored.
    if (endpoint == "startHttpServer" || endpoint == "stopHttpServer" ||
        endpoint == "requestShutdown" || endpoint == "notify" || endpoint == "setExperimentFlag") {
      return void_ok();
    }
    return unknown();
  }
  if (ns_ == "repository" && endpoint == "lmLinkStatus" && host_->settings().lm_link_status) {
    // The result shape of a host with LM Link off (lmLinkStatusResultSchema of the SDK): no
    // peers, so `lms` labels every model "Local" (deviceIdentifier null).
    return {{"status", "offline"},
            {"issues", json::array({"notLoggedIn"})},
            {"peers", json::array()},
            {"deviceIdentifier", nullptr},
            {"deviceName", "lmstudio-emulator"}};
  }
  if (ns_ != "llm" && ns_ != "embedding") return unknown();

  auto resolve = [&](const char* key) -> absl::StatusOr<InstanceHandle> {
    return host_->FindBySpecifier(p.value(key, json::object()), ns_);
  };
  if (endpoint == "listLoaded") return host_->ListLoaded(ns_);
  if (endpoint == "getModelInfo" || endpoint == "getInstanceProcessingState") {
    absl::StatusOr<InstanceHandle> inst = resolve("specifier");
    if (!inst.ok()) {
      if (!p.value("throwIfNotFound", true)) return void_ok();
      *error = inst.status();
      return json();
    }
    return endpoint == "getModelInfo" ? host_->InstanceInfo(*inst) : host_->ProcessingState(*inst);
  }
  if (endpoint == "getLoadConfig") {
    absl::StatusOr<InstanceHandle> inst = resolve("specifier");
    if (!inst.ok()) {
      *error = inst.status();
      return json();
    }
    return host_->LoadConfigJson(*inst);
  }
  if (endpoint == "getBasePredictionConfig") {
    absl::StatusOr<InstanceHandle> inst = resolve("specifier");
    if (!inst.ok()) {
      *error = inst.status();
      return json();
    }
    if (ns_ != "llm") return {{"fields", json::array()}};
    return {{"fields",
             {{{"key", "llm.prediction.temperature"}, {"value", 0.8}},
              {{"key", "llm.prediction.contextOverflowPolicy"}, {"value", "truncateMiddle"}},
              {{"key", "llm.prediction.maxPredictedTokens"},
               {"value", {{"checked", false}, {"value", 1000}}}},
              {{"key", "llm.prediction.stopStrings"}, {"value", json::array()}}}}};
  }
  if (endpoint == "unloadModel") {
    absl::Status s = host_->Unload(p.value("identifier", ""));
    if (!s.ok()) *error = s;
    return void_ok();
  }
  if (endpoint == "tokenize" || endpoint == "countTokens") {
    absl::StatusOr<InstanceHandle> inst = resolve("specifier");
    if (!inst.ok()) {
      *error = inst.status();
      return json();
    }
    std::vector<Token> tokens = Tokenize(p.value("inputString", ""));
    if (endpoint == "countTokens") return {{"tokenCount", static_cast<int64_t>(tokens.size())}};
    json ids = json::array();
    for (const Token& t : tokens) ids.push_back(t.id);
    return {{"tokens", ids}};
  }
  if (endpoint == "estimateModelUsage") {
    const ModelSpec* m = host_->catalogue().Find(p.value("modelKey", ""));
    if (m == nullptr || m->type != ns_) {
      *error = absl::NotFoundError(
          absl::StrCat("Cannot find model with key \"", p.value("modelKey", ""), "\""));
      return json();
    }
    KvConfig kv = KvConfig::FromStack(p.value("loadConfigStack", json::object()));
    const double ctx = kv.Number(absl::StrCat(ns_, ".load.contextLength"))
                           .value_or(static_cast<double>(m->default_context_length));
    const int64_t context_bytes = static_cast<int64_t>(ctx * 36864);  // ~36 KiB per token
    return {{"memory",
             {{"confidence", "high"},
              {"modelVramBytes", m->size_bytes},
              {"contextVramBytes", context_bytes},
              {"totalVramBytes", m->size_bytes + context_bytes},
              {"modelBytes", m->size_bytes},
              {"contextBytes", context_bytes},
              {"totalBytes", m->size_bytes + context_bytes}}},
            {"passesGuardrails", true}};
  }
  if (ns_ == "embedding" && endpoint == "embedString") {
    absl::StatusOr<InstanceHandle> inst = resolve("modelSpecifier");
    if (!inst.ok()) {
      *error = inst.status();
      return json();
    }
    absl::StatusOr<std::vector<float>> e = host_->Embed(*inst, p.value("inputString", ""));
    if (!e.ok()) {
      *error = e.status();
      return json();
    }
    return {{"embedding", *e}};
  }
  if (ns_ == "llm" && endpoint == "applyPromptTemplate") {
    PromptInput in;
    in.messages = MessagesFromSdkHistory(p.value("history", json::object()));
    return {{"formatted", RenderPrompt(in)}};
  }
  if (ns_ == "llm" && endpoint == "preloadDraftModel") return void_ok();
  return unknown();
}

}  // namespace lmgate::emulator
