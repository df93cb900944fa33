#include "tests/emulator/catalogue.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;

// Realistic metadata for models LM Studio users actually run (sizes of the Q4_K_M GGUFs).
constexpr const char* kBuiltInCatalogue = R"json({"models":[
 {"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf","displayName":"Qwen3 4B",
  "publisher":"qwen","path":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf",
  "sizeBytes":2497280256,"paramsString":"4B","architecture":"qwen3",
  "quantization":{"name":"Q4_K_M","bits":4},"vision":false,"trainedForToolUse":true,
  "maxContextLength":40960},
 {"type":"llm","modelKey":"qwen/qwen3-4b-thinking-2507","format":"gguf",
  "displayName":"Qwen3 4B Thinking 2507","publisher":"qwen",
  "path":"lmstudio-community/Qwen3-4B-Thinking-2507-GGUF/Qwen3-4B-Thinking-2507-Q4_K_M.gguf",
  "sizeBytes":2497281120,"paramsString":"4B","architecture":"qwen3",
  "quantization":{"name":"Q4_K_M","bits":4},"vision":false,"trainedForToolUse":true,
  "maxContextLength":262144,"reasoning":true},
 {"type":"llm","modelKey":"google/gemma-3-1b","format":"gguf","displayName":"Gemma 3 1B",
  "publisher":"google","path":"lmstudio-community/gemma-3-1b-it-GGUF/gemma-3-1b-it-Q4_K_M.gguf",
  "sizeBytes":806058240,"paramsString":"1B","architecture":"gemma3",
  "quantization":{"name":"Q4_K_M","bits":4},"vision":false,"trainedForToolUse":false,
  "maxContextLength":32768},
 {"type":"embedding","modelKey":"text-embedding-nomic-embed-text-v1.5","format":"gguf",
  "displayName":"Nomic Embed Text v1.5","publisher":"nomic-ai",
  "path":"nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf",
  "sizeBytes":84106624,"paramsString":"137M","architecture":"nomic-bert",
  "quantization":{"name":"Q4_K_M","bits":4},"maxContextLength":2048,"embeddingDimension":768},
 {"type":"embedding","modelKey":"text-embedding-bge-small-en-v1.5","format":"gguf",
  "displayName":"BGE Small EN v1.5","publisher":"CompendiumLabs",
  "path":"CompendiumLabs/bge-small-en-v1.5-gguf/bge-small-en-v1.5-q8_0.gguf",
  "sizeBytes":36741376,"paramsString":"33M","architecture":"bert",
  "quantization":{"name":"Q8_0","bits":8},"maxContextLength":512,"embeddingDimension":384}
]})json";

absl::StatusOr<ModelSpec> ParseModel(const json& m) {
  if (!m.is_object()) return absl::InvalidArgumentError("catalogue entry is not an object");
  ModelSpec s;
  s.type = m.value("type", "llm");
  if (s.type != "llm" && s.type != "embedding") {
    return absl::InvalidArgumentError(absl::StrCat("unknown model type: ", s.type));
  }
  s.model_key = m.value("modelKey", "");
  if (s.model_key.empty()) return absl::InvalidArgumentError("catalogue entry without modelKey");
  s.format = m.value("format", "gguf");
  s.publisher = m.value("publisher", s.model_key.substr(0, s.model_key.find('/')));
  s.display_name = m.value("displayName", s.model_key);
  s.path = m.value("path", s.model_key);
  s.size_bytes = m.value("sizeBytes", int64_t{1} << 30);
  s.params_string = m.value("paramsString", "");
  s.architecture = m.value("architecture", "");
  if (m.contains("quantization") && m["quantization"].is_object()) {
    s.quantization_name = m["quantization"].value("name", "");
    s.quantization_bits = m["quantization"].value("bits", 4);
  }
  s.vision = m.value("vision", false);
  s.trained_for_tool_use = m.value("trainedForToolUse", false);
  s.reasoning = m.value("reasoning", false);
  s.max_context_length = m.value("maxContextLength", int64_t{4096});
  s.default_context_length =
      m.value("defaultContextLength", std::min<int64_t>(4096, s.max_context_length));
  s.embedding_dimension = m.value("embeddingDimension", 768);
  if (s.embedding_dimension <= 0) return absl::InvalidArgumentError("embeddingDimension <= 0");
  return s;
}

}  // namespace

std::string ModelSpec::VariantName() const {
  if (quantization_name.empty()) return model_key;
  return absl::StrCat(model_key, "@", absl::AsciiStrToLower(quantization_name));
}

Catalogue Catalogue::BuiltIn() {
  auto c = FromJson(json::parse(kBuiltInCatalogue));
  return *std::move(c);  // the literal above is known-good; a test covers it
}

absl::StatusOr<Catalogue> Catalogue::FromJson(const json& j) {
  const json* list = &j;
  if (j.is_object()) {
    if (!j.contains("models")) return absl::InvalidArgumentError("catalogue object lacks \"models\"");
    list = &j["models"];
  }
  if (!list->is_array()) return absl::InvalidArgumentError("catalogue models is not an array");
  Catalogue c;
  for (const json& m : *list) {
    absl::StatusOr<ModelSpec> s = ParseModel(m);
    if (!s.ok()) return s.status();
    if (c.Find(s->model_key) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate modelKey ", s->model_key));
    }
    c.models_.push_back(*std::move(s));
  }
  return c;
}

absl::StatusOr<Catalogue> Catalogue::FromFile(const std::string& path) {
  if (path.empty()) return BuiltIn();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open catalogue ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("invalid JSON in ", path));
  return FromJson(j);
}

const ModelSpec* Catalogue::Find(absl::string_view name) const {
  for (const ModelSpec& m : models_) {
    if (absl::EqualsIgnoreCase(m.model_key, name) || m.path == name ||
        absl::EqualsIgnoreCase(m.VariantName(), name)) {
      return &m;
    }
  }
  return nullptr;
}

std::vector<std::string> Catalogue::Keys() const {
  std::vector<std::string> keys;
  for (const ModelSpec& m : models_) keys.push_back(m.model_key);
  return keys;
}

nlohmann::json ModelInfoJson(const ModelSpec& s) {
  json j = {{"type", s.type},
            {"modelKey", s.model_key},
            {"format", s.format},
            {"displayName", s.display_name},
            {"publisher", s.publisher},
            {"path", s.path},
            {"sizeBytes", s.size_bytes},
            {"indexedModelIdentifier", s.path},
            {"deviceIdentifier", nullptr}};
  if (!s.params_string.empty()) j["paramsString"] = s.params_string;
  if (!s.architecture.empty()) j["architecture"] = s.architecture;
  if (!s.quantization_name.empty()) {
    j["quantization"] = {{"name", s.quantization_name}, {"bits", s.quantization_bits}};
  }
  j["variants"] = json::array({s.VariantName()});
  j["selectedVariant"] = s.VariantName();
  if (s.is_llm()) {
    j["vision"] = s.vision;
    j["trainedForToolUse"] = s.trained_for_tool_use;
  }
  j["maxContextLength"] = s.max_context_length;
  return j;
}

std::string RestV0Type(const ModelSpec& s) {
  if (!s.is_llm()) return "embeddings";
  return s.vision ? "vlm" : "llm";
}

std::string CompatibilityType(const ModelSpec& s) {
  return absl::StartsWith(s.format, "mlx") ? "mlx" : "gguf";
}

}  // namespace lmgate::emulator
