// lms load, lms unload (load.ts, unload.ts).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/emulator/lms/commands.h"
#include "tests/emulator/lms/commands_internal.h"
#include "tests/emulator/lms/format.h"

namespace lmgate::lms {
namespace {

// String(number) in JavaScript: the shortest text that reads back as the same double.
std::string JsNumberText(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buffer[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  return buffer;
}

// Number.prototype.toLocaleString() in en-US for integers: "8,192".
std::string WithThousands(int64_t v) {
  std::string digits = absl::StrCat(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return v < 0 ? "-" + out : out;
}

struct LoadOptions {
  std::optional<double> gpu;
  std::optional<int64_t> context_length;
  std::optional<int64_t> parallel;
  std::optional<int64_t> ttl_seconds;
  std::optional<std::string> identifier;
};

LoadOptions ReadLoadOptions(const CommandLine& line) {
  LoadOptions o;
  if (line.Has("gpu")) {
    const std::string g = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.Get("gpu")));
    o.gpu = g == "off" ? 0.0 : g == "max" ? 1.0 : JsNumber(g);
  }
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    if (!line.Has(name)) return std::nullopt;
    return static_cast<int64_t>(JsNumber(line.Get(name)));
  };
  o.context_length = integer("context-length");
  o.parallel = integer("parallel");
  o.ttl_seconds = integer("ttl");
  if (line.Has("identifier")) o.identifier = line.Get("identifier");
  return o;
}

// The loadConfigStack the CLI sends (lms@07b7252 encodes like SDK 1.5.0, §1.7).
Json LoadConfigStack(const LoadOptions& o, bool llm) {
  const std::string prefix = llm ? "llm.load." : "embedding.load.";
  Json fields = Json::array();
  auto add = [&](const std::string& key, Json value) {
    fields.push_back({{"key", key}, {"value", std::move(value)}});
  };
  if (o.gpu) {
    add("load.gpuSplitConfig", {{"strategy", "evenly"},
                                {"disabledGpus", Json::array()},
                                {"priority", Json::array()},
                                {"customRatio", Json::array()}});
    add(prefix + "llama.acceleration.offloadRatio", *o.gpu);
  }
  if (o.context_length) add(prefix + "contextLength", *o.context_length);
  if (o.parallel && llm) add("llm.load.numParallelSessions", *o.parallel);
  return {{"layers", Json::array({{{"layerName", "apiOverride"}, {"config", {{"fields", fields}}}}})}};
}

int ModelNotFound(const Logger& log, const std::string& body) {
  log.ErrorWithoutPrefix(TitledError("Model not found", body));
  return 1;
}

int EstimateOnly(Session& session, const Json& model, const LoadOptions& o, const Logger& log) {
  const bool llm = StrField(model, "type") == "llm";
  const std::string key = StrField(model, "modelKey");
  auto estimate = session.Call(llm ? Namespace::kLlm : Namespace::kEmbedding, "estimateModelUsage",
                               Json{{"modelKey", key}, {"loadConfigStack", LoadConfigStack(o, llm)}});
  if (!estimate.ok()) return Fail(log, estimate.status());
  const Json& memory = Field(*estimate, "memory");
  auto bytes = [&](const char* name) {
    const Json& v = Field(memory, name);
    return FormatSizeBytes1024(v.is_number() ? v.get<int64_t>() : 0);
  };
  log.Info(absl::StrCat("Model: ", key));
  if (o.context_length) log.Info(absl::StrCat("Context Length: ", WithThousands(*o.context_length)));
  if (o.gpu) log.Info(absl::StrCat("GPU Offload: ", JsNumberText(*o.gpu * 100), "%"));
  log.Info(absl::StrCat("Estimated GPU Memory:   ", bytes("totalVramBytes")));
  log.Info(absl::StrCat("Estimated Total Memory: ", bytes("totalBytes")));
  if (StrField(memory, "confidence") == "low") log.Info("Confidence: LOW");
  log.Info(Field(*estimate, "passesGuardrails") == true
               ? "\nEstimate: This model may be loaded based on your resource guardrails settings."
               : "\nEstimate: This model will fail to load based on your resource guardrails "
                 "settings.");
  return 0;
}

// Spinner.ts: redrawn on stdout (terminal or not) every 80 ms and on each progress update,
// cleared when the load ends.
class Spinner {
 public:
  explicit Spinner(std::string text) : text_(std::move(text)) {}
  void SetText(std::string text) {
    text_ = std::move(text);
    Refresh();
  }
  void Tick() {
    ++index_;
    Refresh();
  }
  void Stop() { std::cout << "\r\x1B[K" << "\x1B[?25h" << std::flush; }

 private:
  void Refresh() {
    static constexpr const char* kFrames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    std::cout << "\x1B[?25l" << "\r" << text_ << " " << kFrames[index_ % 10] << std::flush;
  }
  std::string text_;
  size_t index_ = 0;
};

// loadModel() in load.ts.
int DoLoad(Session& session, const Json& model, const LoadOptions& o, bool defer_device,
           const Logger& log) {
  const bool llm = StrField(model, "type") != "embedding";
  const std::string key = StrField(model, "modelKey");
  Json creation = {{"modelKey", key}};
  if (o.identifier) creation["identifier"] = *o.identifier;
  if (!defer_device) creation["deviceIdentifier"] = Field(model, "deviceIdentifier");
  if (o.ttl_seconds) creation["ttlMs"] = *o.ttl_seconds * 1000;
  creation["loadConfigStack"] = LoadConfigStack(o, llm);
  const std::string spinner_text = absl::StrCat("Loading ", key);
  Spinner spinner(spinner_text);
  absl::Time last_progress = absl::InfinitePast();
  auto update = [&](std::optional<double> progress) {
    if (!progress) return spinner.Tick();
    const absl::Time now = absl::Now();
    if (*progress < 1 && now - last_progress < absl::Milliseconds(100)) return;  // as load.ts
    spinner.SetText(absl::StrCat(spinner_text, " ", std::llround(*progress * 100), "%"));
    last_progress = now;
  };
  const absl::Time start = absl::Now();
  auto info = session.LoadModel(llm ? Namespace::kLlm : Namespace::kEmbedding, std::move(creation),
                                update);
  spinner.Stop();
  if (!info.ok()) return Fail(log, info.status());
  const double elapsed_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  auto current = session.Call(llm ? Namespace::kLlm : Namespace::kEmbedding, "getModelInfo",
                              Json{{"specifier", InstanceSpecifier(*info)}, {"throwIfNotFound", true}});
  if (!current.ok()) return Fail(log, current.status());
  const Json& device = Field(*current, "deviceIdentifier");
  std::string success =
      device.is_string()
          ? absl::StrCat("Model loaded successfully on ", DeviceLabel(device), " in ",
                         FormatElapsedTime(elapsed_ms), ".")
          : absl::StrCat("Model loaded successfully in ", FormatElapsedTime(elapsed_ms), ".");
  const Json& size = Field(*current, "sizeBytes");
  if (size.is_number()) absl::StrAppend(&success, "\n(", FormatSizeBytes1024(size.get<int64_t>()), ")");
  log.Info(success);
  log.Info(absl::StrCat("To use the model in the API/SDK, use the identifier \"",
                        StrField(*current, "identifier"), "\"."));
  return 0;
}

}  // namespace

int RunLoad(const CommandLine& line) {
  Logger log(line);
  const LoadOptions options = ReadLoadOptions(line);
  std::unique_ptr<Session> session = Session::Create(line, log);
  if (!session) return 1;
  FetchLmLinkStatus(*session, log);
  auto listed = session->Call(Namespace::kSystem, "listDownloadedModels");
  if (!listed.ok()) return Fail(log, listed.status());
  std::vector<Json> models;
  for (const Json& m : listed->is_array() ? *listed : Json::array()) {
    if (absl::StrContains(absl::AsciiStrToLower(StrField(m, "architecture")), "clip")) continue;
    if (line.Has("local") && !Field(m, "deviceIdentifier").is_null()) continue;
    models.push_back(m);
  }
  const bool estimate_only = line.Has("estimate-only");
  const std::optional<std::string> key =
      line.positionals.empty() ? std::nullopt : std::optional<std::string>(line.positionals[0]);

  if (line.Has("exact")) {
    if (!key) {
      log.ErrorWithoutPrefix(TitledError(
          "Path not provided",
          "The parameter [model-key] is required when using the --exact flag."));
      return 1;
    }
    for (const Json& m : models) {
      if (StrField(m, "path") != *key) continue;
      if (estimate_only) return EstimateOnly(*session, m, options, log);
      return DoLoad(*session, m, options, /*defer_device=*/false, log);
    }
    std::string body = absl::StrCat(
        "No model found with path being exactly \"", *key, "\".\n\nTo disable exact matching, "
        "remove the --exact flag.\n\nTo see a list of all downloaded models, run:\n\n    lms ls");
    if (!models.empty()) {
      std::string shortest = StrField(models[0], "path");
      for (const Json& m : models) {
        if (StrField(m, "path").size() < shortest.size()) shortest = StrField(m, "path");
      }
      absl::StrAppend(&body, "\n\nNote, you need to provide the full model path. For example:\n\n",
                      "  lms load --exact ", shortest);
    }
    return ModelNotFound(log, body);
  }

  std::vector<std::string> keys;
  for (const Json& m : models) keys.push_back(StrField(m, "modelKey"));
  const std::vector<size_t> matches = FuzzyFilter(key.value_or(""), keys);
  auto same_device_duplicates = [&] {
    for (size_t a = 0; a < matches.size(); ++a) {
      for (size_t b = a + 1; b < matches.size(); ++b) {
        if (Field(models[matches[a]], "deviceIdentifier") ==
            Field(models[matches[b]], "deviceIdentifier")) {
          return true;
        }
      }
    }
    return false;
  };
  const Json* model = nullptr;
  bool defer_device = false;
  if (line.Has("yes")) {
    if (matches.empty()) {
      return ModelNotFound(
          log, absl::StrCat("No model found that matches model key \"", key.value_or(""),
                            "\".\n\nTo see a list of all downloaded models, run:\n\n    lms ls"
                            "\n\nTo select a model interactively, remove the --yes flag:\n\n"
                            "    lms load"));
    }
    model = &models[matches[0]];
    if (matches.size() > 1) {
      if (same_device_duplicates()) {
        log.Warn(absl::StrCat(matches.size(), " models match the provided model key on the same "
                              "device. Loading the first one."));
      } else {
        defer_device = true;
      }
    }
  } else {
    std::cout << "\n";
    const std::string verb = estimate_only ? "estimate" : "load";
    if (!key) return CannotPrompt(log, absl::StrCat("Select a model to ", verb));
    if (matches.empty()) {
      std::cout << "! Cannot find a model matching the provided model key (" << *key
                << "). Please select one from the list below.\n";
      return CannotPrompt(log, absl::StrCat("Select a model to ", verb));
    }
    model = &models[matches[0]];
    if (matches.size() > 1) {
      bool several_keys = false;
      for (size_t m : matches) several_keys |= keys[m] != keys[matches[0]];
      if (several_keys || same_device_duplicates()) {
        std::cout << "! Multiple models match the provided model key. Please select one.\n";
        return CannotPrompt(log, absl::StrCat("Select a model to ", verb));
      }
      defer_device = true;
    }
  }
  if (estimate_only) return EstimateOnly(*session, *model, options, log);
  return DoLoad(*session, *model, options, defer_device, log);
}

int RunUnload(const CommandLine& line) {
  Logger log(line);
  std::unique_ptr<Session> session = Session::Create(line, log);
  if (!session) return 1;
  FetchLmLinkStatus(*session, log);
  const bool all = line.Has("all");
  if (all && !line.positionals.empty()) {
    // The real CLI returns here without an error exit code.
    log.ErrorWithoutPrefix(TitledError(
        "Invalid Usage", "You cannot provide [path] when the flag --all is set."));
    return 0;
  }
  auto loaded = ListLoaded(*session);
  if (!loaded.ok()) return Fail(log, loaded.status());
  auto target = [](const Loaded& l) {
    const Json& device = Field(l.info, "deviceIdentifier");
    std::string quoted = absl::StrCat("\"", l.identifier(), "\"");
    return device.is_string() ? absl::StrCat(quoted, " on ", DeviceLabel(device)) : quoted;
  };
  auto unload = [&](const Loaded& l) {
    return session->Call(l.ns, "unloadModel",
                         Json{{"identifier", l.identifier()},
                              {"deviceIdentifier", Field(l.info, "deviceIdentifier")}})
        .status();
  };

  if (all) {
    if (loaded->empty()) {
      log.Info("No models to unload.");
      return 0;
    }
    for (const Loaded& l : *loaded) {
      log.Info(absl::StrCat("Unloading ", target(l), "..."));
      if (absl::Status s = unload(l); !s.ok()) return Fail(log, s);
    }
    log.Info(loaded->size() > 1 ? absl::StrCat("Unloaded ", loaded->size(), " models.")
                                : "Unloaded 1 model.");
    return 0;
  }
  if (!line.positionals.empty()) {
    const std::string& identifier = line.positionals[0];
    std::vector<const Loaded*> matching;
    for (const Loaded& l : *loaded) {
      if (l.identifier() == identifier) matching.push_back(&l);
    }
    if (matching.empty()) {
      // The real CLI prints this and exits 0.
      log.ErrorWithoutPrefix(TitledError(
          "Model Not Found",
          absl::StrCat("Cannot find a model with the identifier \"", identifier,
                       "\".\n\nTo see a list of loaded models, run:\n\n    lms ps")));
      return 0;
    }
    if (matching.size() > 1) {
      return CannotPrompt(log, "Multiple models found. Select one to unload");
    }
    if (absl::Status s = unload(*matching[0]); !s.ok()) return Fail(log, s);
    log.Info(absl::StrCat("Model ", target(*matching[0]), " unloaded."));
    return 0;
  }
  if (loaded->empty()) {
    log.Info("You don't have any models loaded. Use \"lms load\" to load a model.");
    return 1;
  }
  if (loaded->size() == 1) {
    if (absl::Status s = unload((*loaded)[0]); !s.ok()) return Fail(log, s);
    log.Info(absl::StrCat("Model ", target((*loaded)[0]), " unloaded."));
    return 0;
  }
  std::cout << "! To unload all models, use the --all flag.\n\n";
  return CannotPrompt(log, "Select a model to unload");
}

}  // namespace lmgate::lms
