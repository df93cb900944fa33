// lms ls, lms ps, lms status, lms server status (list.ts, status.ts, server.ts).
#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tests/emulator/lms/commands.h"
#include "tests/emulator/lms/commands_internal.h"
#include "tests/emulator/lms/format.h"

namespace lmgate::lms {

// ---------------------------------------------------------------- shared helpers

absl::StatusOr<std::vector<Loaded>> ListLoaded(Session& session) {
  auto lists = session.CallAll({{Namespace::kLlm, "listLoaded", std::nullopt},
                                {Namespace::kEmbedding, "listLoaded", std::nullopt}});
  if (!lists.ok()) return lists.status();
  std::vector<Loaded> out;
  for (int i = 0; i < 2; ++i) {
    if (!(*lists)[i].is_array()) continue;
    for (const Json& info : (*lists)[i]) {
      out.push_back({i == 0 ? Namespace::kLlm : Namespace::kEmbedding, info});
    }
  }
  return out;
}

Json InstanceSpecifier(const Json& info) {
  return {{"type", "instanceReference"},
          {"instanceReference", StrField(info, "instanceReference")}};
}

// What the SDK's load-config parser (maxParallelPredictions) yields when the host's config has no
// llm.load.numParallelSessions: the schema default.
constexpr int64_t kSdkDefaultParallel = 4;

void FetchLmLinkStatus(Session& session, const Logger& log) {
  absl::StatusOr<Json> status = session.Call(Namespace::kRepository, "lmLinkStatus");
  if (!status.ok()) {
    log.Debug(absl::StrCat("Failed to fetch LM Link status: ", status.status().message()));
  }
}

std::string DeviceLabel(const Json& device_identifier) {
  if (!device_identifier.is_string()) return "Local";
  return absl::StrCat("remote:", device_identifier.get<std::string>().substr(0, 6));
}

int Fail(const Logger& log, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    // The real CLI: the SDK's transport logs the rejection, the command's promise never settles,
    // and Node ends the process with its "unsettled top-level await" exit code, 13.
    log.Warn(absl::StrCat("[LMStudioClient][Repository][ClientPort][WsClientTransport] WebSocket "
                          "error: Error: ", FailureText(status)));
    std::cerr << "Warning: Detected unsettled top-level await at file:///lms/index.js\n";
    return kExitUnsettledTopLevelAwait;
  }
  log.ErrorWithoutPrefix(absl::StrCat("Error: ", FailureText(status)));
  return 1;
}

bool LocaleLess(const std::string& a, const std::string& b) {
  const std::string la = absl::AsciiStrToLower(a), lb = absl::AsciiStrToLower(b);
  return la != lb ? la < lb : a < b;
}

int CannotPrompt(const Logger& log, const std::string& what) {
  log.ErrorWithoutPrefix(absl::StrCat(
      "? ", what, " | (the lms stand-in cannot prompt: stdin is not a terminal; pass --yes, "
      "--exact or an identifier)"));
  return 1;
}

namespace {

int64_t SizeOf(const Json& info) {
  const Json& s = Field(info, "sizeBytes");
  return s.is_number() ? s.get<int64_t>() : 0;
}

std::string LoadedCheck(int count) {
  if (count == 0) return "";
  if (count == 1) return "\u2713 LOADED";
  return absl::StrCat("\u2713 LOADED (", count, ")");
}

std::string KeyWithVariantCount(const Json& model) {
  const std::string key = StrField(model, "modelKey");
  const Json& variants = Field(model, "variants");
  if (!variants.is_array()) return key;
  return absl::StrCat(key, " (", variants.size(), variants.size() == 1 ? " variant)" : " variants)");
}

int CountLoaded(const std::vector<Loaded>& loaded, const Json& model) {
  int n = 0;
  for (const Loaded& l : loaded) {
    if (StrField(l.info, "modelKey") == StrField(model, "modelKey") &&
        Field(l.info, "deviceIdentifier") == Field(model, "deviceIdentifier")) {
      ++n;
    }
  }
  return n;
}

std::vector<std::string> ModelRow(const Json& model, std::string path,
                                  const std::vector<Loaded>& loaded) {
  return {std::move(path),
          StrField(model, "paramsString"),
          ArchitectureName(StrField(model, "architecture")),
          FormatSizeBytes1000(SizeOf(model)),
          DeviceLabel(Field(model, "deviceIdentifier")),
          LoadedCheck(CountLoaded(loaded, model))};
}

std::vector<Json> SortedByKey(std::vector<Json> models) {
  std::stable_sort(models.begin(), models.end(), [](const Json& a, const Json& b) {
    return LocaleLess(StrField(a, "modelKey"), StrField(b, "modelKey"));
  });
  return models;
}

// printDownloadedModelsTable / printModelsWithVariantRows.
void PrintModelTable(const std::string& title, const std::vector<Json>& models,
                     const std::vector<Loaded>& loaded,
                     const std::map<std::string, Json>* variants_by_key) {
  std::vector<std::vector<std::string>> rows;
  for (const Json& m : SortedByKey(models)) {
    const Json& variants = Field(m, "variants");
    if (variants_by_key == nullptr || !variants.is_array() || variants.empty()) {
      rows.push_back(ModelRow(m, KeyWithVariantCount(m), loaded));
    } else {
      rows.push_back({KeyWithVariantCount(m)});
    }
    if (variants_by_key == nullptr) continue;
    auto it = variants_by_key->find(StrField(m, "modelKey"));
    if (it == variants_by_key->end() || !it->second.is_array()) continue;
    for (const Json& v : it->second) {
      const bool selected = Field(m, "selectedVariant") == Field(v, "modelKey");
      rows.push_back(ModelRow(v, absl::StrCat(selected ? " * " : "   ", StrField(v, "modelKey")),
                              loaded));
    }
  }
  std::cout << Columnify({title, "PARAMS", "ARCH", "SIZE", "DEVICE", ""}, rows) << "\n";
}

}  // namespace

// ---------------------------------------------------------------- lms ls

int RunLs(const CommandLine& line) {
  Logger log(line);
  std::unique_ptr<Session> session = Session::Create(line, log);
  if (!session) return 1;
  FetchLmLinkStatus(*session, log);
  const bool json = line.Has("json"), variants = line.Has("variants");
  if (!line.positionals.empty() && variants) {
    log.Error("Cannot combine a model key argument with --variants.");
    return 1;
  }
  if (line.Has("detailed")) {
    log.Warn("The '--detailed' flag is deprecated. Output is the same as 'lms ls'");
  }
  auto views = [](const Json& models) {
    OrderedJson out = OrderedJson::array();
    if (models.is_array()) {
      for (const Json& m : models) out.push_back(ModelInfoView(m));
    }
    return out;
  };

  if (!line.positionals.empty()) {
    const std::string key = line.positionals[0];
    auto found = session->Call(Namespace::kSystem, "listDownloadedModelVariants",
                               Json{{"modelKey", key}});
    if (!found.ok()) return Fail(log, found.status());
    if (json) {
      std::cout << Stringify(views(*found)) << "\n";
      return 0;
    }
    auto loaded = ListLoaded(*session);
    if (!loaded.ok()) return Fail(log, loaded.status());
    std::vector<Json> list(found->begin(), found->end());
    const bool embedding = !list.empty() && StrField(list[0], "type") == "embedding";
    std::cout << "\nListing variants for " << key << ":\n\n";
    PrintModelTable(embedding ? "EMBEDDING" : "LLM", list, *loaded, nullptr);
    std::cout << "\n";
    return 0;
  }

  auto all = session->Call(Namespace::kSystem, "listDownloadedModels");
  if (!all.ok()) return Fail(log, all.status());
  auto loaded = ListLoaded(*session);
  if (!loaded.ok()) return Fail(log, loaded.status());
  std::vector<Json> models;
  if (all->is_array()) {
    for (const Json& m : *all) {
      const std::string type = StrField(m, "type");
      const bool keep = (!line.Has("llm") && !line.Has("embedding")) ||
                        (line.Has("llm") && type == "llm") ||
                        (line.Has("embedding") && type == "embedding");
      if (keep) models.push_back(m);
    }
  }
  // Variants of the models that have some (--variants).
  std::map<std::string, Json> variants_by_key;
  std::vector<Json> with_variants;
  if (variants) {
    for (const Json& m : models) {
      const Json& v = Field(m, "variants");
      if (!v.is_array() || v.empty()) continue;
      const std::string key = StrField(m, "modelKey");
      auto found = session->Call(Namespace::kSystem, "listDownloadedModelVariants",
                                 Json{{"modelKey", key}});
      if (!found.ok()) return Fail(log, found.status());
      variants_by_key[key] = *found;
      with_variants.push_back(m);
    }
  }
  if (json) {
    OrderedJson out = OrderedJson::array();
    if (variants) {
      for (const Json& m : with_variants) {
        out.push_back({{"model", ModelInfoView(m)},
                       {"variants", views(variants_by_key[StrField(m, "modelKey")])}});
      }
    } else {
      for (const Json& m : models) out.push_back(ModelInfoView(m));
    }
    std::cout << Stringify(out) << "\n";
    return 0;
  }
  if (models.empty()) {
    const size_t total = all->is_array() ? all->size() : 0;
    std::cout << (total == 0 ? std::string("You have not downloaded any models yet.")
                             : absl::StrCat("You have ", total,
                                            " models, but none of them match the filter."))
              << "\n";
    return 0;
  }
  int64_t total_size = 0;
  for (const Json& m : models) total_size += SizeOf(m);
  std::cout << "\nYou have " << models.size() << " models, taking up "
            << FormatSizeBytes1000(total_size) << " of disk space.\n\n";
  for (const char* type : {"llm", "embedding"}) {
    std::vector<Json> of_type;
    for (const Json& m : models) {
      if (StrField(m, "type") == type) of_type.push_back(m);
    }
    if (of_type.empty()) continue;
    PrintModelTable(std::string(type) == "llm" ? "LLM" : "EMBEDDING", of_type, *loaded,
                    variants ? &variants_by_key : nullptr);
    std::cout << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------- lms ps

int RunPs(const CommandLine& line) {
  Logger log(line);
  std::unique_ptr<Session> session = Session::Create(line, log);
  if (!session) return 1;
  FetchLmLinkStatus(*session, log);
  auto loaded = ListLoaded(*session);
  if (!loaded.ok()) return Fail(log, loaded.status());
  // Per instance: getModelInfo, getLoadConfig, getInstanceProcessingState, all pipelined.
  std::vector<RpcRequest> requests;
  for (const Loaded& l : *loaded) {
    const Json spec = InstanceSpecifier(l.info);
    requests.push_back({l.ns, "getModelInfo", Json{{"specifier", spec}, {"throwIfNotFound", true}}});
    requests.push_back({l.ns, "getLoadConfig", Json{{"specifier", spec}}});
    requests.push_back(
        {l.ns, "getInstanceProcessingState", Json{{"specifier", spec}, {"throwIfNotFound", true}}});
  }
  auto answers = session->CallAll(std::move(requests));
  if (!answers.ok()) return Fail(log, answers.status());

  if (line.Has("json")) {
    OrderedJson out = OrderedJson::array();
    for (size_t i = 0; i < loaded->size(); ++i) {
      const Json& info = (*answers)[3 * i];
      std::optional<int64_t> parallel;
      if ((*loaded)[i].ns == Namespace::kLlm) {
        std::optional<Json> p = KvValue((*answers)[3 * i + 1], "llm.load.numParallelSessions");
        if (!p) parallel = kSdkDefaultParallel;
        if (p && p->is_number()) parallel = p->get<int64_t>();
      }
      out.push_back(PsEntry(info, (*answers)[3 * i + 2], parallel));
    }
    std::cout << Stringify(out) << "\n";
    return 0;
  }
  if (loaded->empty()) {
    log.Info("No models are currently loaded.\n\nTo load a model, run:\n\n    lms load <model path>");
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  const double now_ms = absl::ToUnixMillis(absl::Now());
  for (size_t i = 0; i < loaded->size(); ++i) {
    const bool llm = (*loaded)[i].ns == Namespace::kLlm;
    const Json& info = (*answers)[3 * i];
    const Json& config = (*answers)[3 * i + 1];
    const Json& state = (*answers)[3 * i + 2];
    std::optional<Json> context =
        KvValue(config, llm ? "llm.load.contextLength" : "embedding.load.contextLength");
    std::string parallel = "-";
    if (llm) {
      std::optional<Json> p = KvValue(config, "llm.load.numParallelSessions");
      if (!p) parallel = absl::StrCat(kSdkDefaultParallel);
      if (p && p->is_number()) parallel = absl::StrCat(p->get<int64_t>());
    }
    std::string ttl;
    const Json& ttl_ms = Field(info, "ttlMs");
    if (ttl_ms.is_number()) {
      const Json& used = Field(info, "lastUsedTime");
      const double total = ttl_ms.get<double>();
      const double left = used.is_number() ? total - (now_ms - used.get<double>()) : total;
      ttl = absl::StrCat(FormatTimeLean(left), " / ", FormatTimeLean(total));
    }
    std::string status = StrField(state, "status");
    rows.push_back({StrField(info, "identifier"), StrField(info, "modelKey"),
                    absl::AsciiStrToUpper(status), FormatSizeBytes1000(SizeOf(info)),
                    context && context->is_number() ? absl::StrCat(context->get<int64_t>())
                                                    : Field(info, "contextLength").dump(),
                    parallel, DeviceLabel(Field(info, "deviceIdentifier")), ttl});
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return LocaleLess(a[0], b[0]); });
  std::cout << "\n"
            << Columnify({"IDENTIFIER", "MODEL", "STATUS", "SIZE", "CONTEXT", "PARALLEL",
                          "DEVICE", "TTL"},
                         rows)
            << "\n\n";
  return 0;
}

// ---------------------------------------------------------------- lms server status, lms status

namespace {

struct ServerConfig {
  std::optional<int> port;
  std::optional<std::string> network_interface;
};

// getServerConfig(): the last server settings, <home>/.internal/http-server-config.json.
ServerConfig LastServerConfig() {
  ServerConfig c;
  std::optional<Json> j = ReadJsonFile(LmStudioHome() + "/.internal/http-server-config.json");
  if (!j || !j->is_object()) return c;
  if ((*j)["port"].is_number()) c.port = (*j)["port"].get<int>();
  if ((*j)["networkInterface"].is_string()) {
    c.network_interface = (*j)["networkInterface"].get<std::string>();
  }
  return c;
}

}  // namespace

int RunServerStatus(const CommandLine& line) {
  Logger log(line);
  ServerConfig config = LastServerConfig();
  bool running = false;
  if (config.port) running = CheckHttpServer(config.network_interface.value_or("127.0.0.1"), *config.port);
  if (line.Has("json")) {
    OrderedJson out = {{"running", running}};
    if (config.port) out["port"] = *config.port;
    std::cout << Stringify(out) << "\n";
    return 0;
  }
  if (running) {
    log.Info(absl::StrCat("The server is running on port ", *config.port, "."));
  } else {
    log.Info("The server is not running.");
  }
  return 0;
}

int RunStatus(const CommandLine& line) {
  Logger log(line);
  std::string host = line.Has("host") ? line.Get("host") : "127.0.0.1";
  int port = 1234;
  if (line.Has("port")) {
    port = static_cast<int>(JsNumber(line.Get("port")));
  } else if (host == "127.0.0.1") {
    port = LastServerConfig().port.value_or(1234);
  }
  if (!CheckHttpServer(host, port)) {
    std::cout << "Server:  OFF \n\n(i) To start the server, run the following command:\n\n"
                 "    lms server start\n";
    return 0;
  }
  std::string content = absl::StrCat("Server: ON (port: ", port, ")\n\n");
  std::unique_ptr<Session> session = Session::Create(line, log);
  if (!session) return 1;
  auto loaded = ListLoaded(*session);
  if (!loaded.ok()) return Fail(log, loaded.status());
  auto downloaded = session->Call(Namespace::kSystem, "listDownloadedModels");
  if (!downloaded.ok()) return Fail(log, downloaded.status());
  if (loaded->empty()) {
    content += "No Models Loaded";
  } else {
    content += "Loaded Models";
    for (const Loaded& l : *loaded) {
      std::string size;
      if (downloaded->is_array()) {
        for (const Json& m : *downloaded) {
          if (StrField(m, "path") == StrField(l.info, "path")) {
            size = absl::StrCat(" - ", FormatSizeBytes1000(SizeOf(m)));
            break;
          }
        }
      }
      content += absl::StrCat("\n  \u00b7 ", l.identifier(), size);
    }
  }
  std::cout << content << "\n";
  return 0;
}

}  // namespace lmgate::lms
