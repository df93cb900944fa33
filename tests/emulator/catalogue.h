// The emulator's catalogue of "downloaded" models and the JSON views of them that LM Studio's
// interfaces expose (SDK ModelInfo, REST v0/v1 model objects).
//
// Thread-safety: plain values; a Catalogue is immutable after construction and may be read from any
// thread.
#ifndef LMGATE_TESTS_EMULATOR_CATALOGUE_H_
#define LMGATE_TESTS_EMULATOR_CATALOGUE_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lmgate::emulator {

// One downloaded model. Field names in the catalogue JSON are the SDK ModelInfo names (§1.4),
// plus the emulator-only keys `reasoning`, `defaultContextLength` and `embeddingDimension`.
struct ModelSpec {
  std::string type;  // "llm" | "embedding"
  std::string model_key;
  std::string format = "gguf";
  std::string display_name;
  std::string publisher;
  std::string path;
  int64_t size_bytes = 0;
  std::string params_string;
  std::string architecture;
  std::string quantization_name;
  int quantization_bits = 4;
  bool vision = false;
  bool trained_for_tool_use = false;
  bool reasoning = false;  // emits <think>reasoning</think> before the content
  int64_t max_context_length = 4096;
  int64_t default_context_length = 4096;  // used when a load does not set a context length
  int embedding_dimension = 768;          // embedding models only

  bool is_llm() const { return type == "llm"; }
  // "key@q4_k_m": the single variant the emulator knows for each model.
  std::string VariantName() const;
};

class Catalogue {
 public:
  // The built-in catalogue: three LLMs (qwen/qwen3-4b trained for tool use,
  // qwen/qwen3-4b-thinking-2507 reasoning, google/gemma-3-1b plain) and two embedding models.
  static Catalogue BuiltIn();
  // `json` is {"models":[...]} or a bare array of model objects.
  static absl::StatusOr<Catalogue> FromJson(const nlohmann::json& json);
  // Empty path = built-in.
  static absl::StatusOr<Catalogue> FromFile(const std::string& path);

  const std::vector<ModelSpec>& models() const { return models_; }
  // Matches a model key (case-insensitive), "key@quantization" or the model path. nullptr if none.
  const ModelSpec* Find(absl::string_view name) const;
  // Keys of all models, for error messages.
  std::vector<std::string> Keys() const;

 private:
  std::vector<ModelSpec> models_;
};

// SDK ModelInfo (llm: + vision, trainedForToolUse, maxContextLength; embedding: + maxContextLength).
nlohmann::json ModelInfoJson(const ModelSpec& spec);
// REST v0 `type`: "llm" | "vlm" | "embeddings".
std::string RestV0Type(const ModelSpec& spec);
// REST `compatibility_type` / v1 `format`: "gguf" | "mlx".
std::string CompatibilityType(const ModelSpec& spec);

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_CATALOGUE_H_
