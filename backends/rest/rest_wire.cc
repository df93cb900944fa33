#include "backends/rest/rest_wire.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/http/json.h"

namespace lmgate::backends::rest {
namespace {

using http::Json;
using http::JsonBool;
using http::JsonInt;
using http::JsonInt32;
using http::JsonMember;
using http::JsonString;

// "key:N" (N >= 2) names a further instance of `key`.
bool IsInstanceName(const std::string& id) {
  size_t colon = id.rfind(':');
  int n = 0;
  return colon != std::string::npos &&
         absl::SimpleAtoi(absl::string_view(id).substr(colon + 1), &n) && n >= 2;
}

std::string KeyOf(const std::string& id) {
  return IsInstanceName(id) ? id.substr(0, id.rfind(':')) : id;
}

ModelType TypeOf(const std::string& type) {
  if (type == "llm" || type == "vlm") return ModelType::kLlm;
  if (type == "embeddings" || type == "embedding") return ModelType::kEmbedding;
  return ModelType::kUnknown;
}

// A loaded instance's `config.parallel`. Some host versions leave it out for an LLM loaded with
// the default: that is the SDK's default slot count, as `lms ps` shows it.
int SlotsOf(const Json& config, ModelType type) {
  const Json* parallel = JsonMember(config, "parallel");
  if (parallel == nullptr || parallel->is_null()) {
    return type == ModelType::kLlm ? kDefaultParallelSlots : 0;
  }
  return JsonInt32(config, "parallel").value_or(0);
}

absl::StatusOr<const Json*> ListIn(const absl::StatusOr<Json>& json, const char* key,
                                   absl::string_view what, absl::string_view body) {
  if (!json.ok()) return json.status();
  const Json* list = JsonMember(*json, key);
  if (list == nullptr || !list->is_array()) {
    return absl::InternalError(
        absl::StrCat(what, " has no \"", key, "\" array: ", http::Snippet(body)));
  }
  return list;
}

}  // namespace

int QuantizationBits(absl::string_view name) {
  size_t start = name.find_first_of("0123456789");
  if (start == absl::string_view::npos) return 0;
  size_t end = name.find_first_not_of("0123456789", start);
  int bits = 0;
  if (!absl::SimpleAtoi(name.substr(start, end - start), &bits) || bits < 1 || bits > 32) return 0;
  return bits;
}

absl::StatusOr<HostModels> ParseV0Models(absl::string_view body) {
  absl::StatusOr<Json> json = http::ParseJson(body, "the /api/v0/models answer");
  auto list = ListIn(json, "data", "the /api/v0/models answer", body);
  if (!list.ok()) return list.status();
  HostModels out;
  for (const Json& m : **list) {
    std::string id = JsonString(m, "id");
    if (id.empty()) continue;
    std::string type = JsonString(m, "type");
    if (!IsInstanceName(id)) {
      ModelInfo info;
      info.key = id;
      info.display_name = id;
      info.type = TypeOf(type);
      info.vision = type == "vlm";
      info.publisher = JsonString(m, "publisher");
      info.architecture = JsonString(m, "arch");
      info.format = JsonString(m, "compatibility_type");
      info.quantization = JsonString(m, "quantization");
      info.quantization_bits = QuantizationBits(info.quantization);
      info.max_context_length = JsonInt32(m, "max_context_length").value_or(0);
      if (const Json* caps = JsonMember(m, "capabilities"); caps && caps->is_array()) {
        for (const Json& c : *caps) {
          if (c.is_string() && c.get<std::string>() == "tool_use") info.trained_for_tool_use = true;
        }
      }
      out.downloaded.push_back(std::move(info));
    }
    std::string state = JsonString(m, "state");
    if (state == "loaded") {
      InstanceInfo instance;
      instance.identifier = id;
      instance.model_key = KeyOf(id);
      instance.type = TypeOf(type);
      instance.context_length = JsonInt32(m, "loaded_context_length").value_or(0);
      out.loaded.push_back(std::move(instance));
    } else if (state == "loading") {
      out.loading_keys.push_back(KeyOf(id));
    }
  }
  return out;
}

absl::StatusOr<HostModels> ParseV1Models(absl::string_view body) {
  absl::StatusOr<Json> json = http::ParseJson(body, "the /api/v1/models answer");
  auto list = ListIn(json, "models", "the /api/v1/models answer", body);
  if (!list.ok()) return list.status();
  HostModels out;
  for (const Json& m : **list) {
    ModelInfo info;
    info.key = JsonString(m, "key");
    if (info.key.empty()) continue;
    info.display_name = JsonString(m, "display_name", info.key);
    info.type = TypeOf(JsonString(m, "type"));
    info.format = JsonString(m, "format");
    info.size_bytes = JsonInt(m, "size_bytes").value_or(0);
    info.max_context_length = JsonInt32(m, "max_context_length").value_or(0);
    info.publisher = JsonString(m, "publisher");
    info.architecture = JsonString(m, "architecture");
    info.params = JsonString(m, "params_string");
    if (const Json* q = JsonMember(m, "quantization")) {
      info.quantization = JsonString(*q, "name");
      info.quantization_bits = JsonInt32(*q, "bits_per_weight").value_or(0);
      if (info.quantization_bits == 0) info.quantization_bits = QuantizationBits(info.quantization);
    }
    if (const Json* caps = JsonMember(m, "capabilities")) {
      info.vision = JsonBool(*caps, "vision").value_or(false);
      info.trained_for_tool_use = JsonBool(*caps, "trained_for_tool_use").value_or(false);
    }
    if (const Json* instances = JsonMember(m, "loaded_instances"); instances && instances->is_array()) {
      for (const Json& i : *instances) {
        InstanceInfo instance;
        instance.identifier = JsonString(i, "id");
        if (instance.identifier.empty()) continue;
        instance.model_key = info.key;
        instance.type = info.type;
        if (const Json* config = JsonMember(i, "config")) {
          instance.context_length = JsonInt32(*config, "context_length").value_or(0);
          instance.parallel_slots = SlotsOf(*config, instance.type);
        }
        out.loaded.push_back(std::move(instance));
      }
    }
    out.downloaded.push_back(std::move(info));
  }
  return out;
}

HostModels MergeModels(HostModels v0, HostModels v1) {
  HostModels out = std::move(v1);
  out.loading_keys = std::move(v0.loading_keys);
  std::set<std::string> known;
  for (const ModelInfo& m : out.downloaded) known.insert(m.key);
  // v0 lists an instance with a custom identifier as a row of its own; v1 says whose it is.
  for (const InstanceInfo& i : out.loaded) known.insert(i.identifier);
  for (ModelInfo& m : v0.downloaded) {
    if (known.insert(m.key).second) out.downloaded.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::string> BuildLoadBody(const LoadParams& p) {
  if (p.model_key.empty()) return absl::InvalidArgumentError("no model key to load");
  std::vector<std::string> unsupported;
  if (!p.identifier.empty()) unsupported.push_back("identifier");
  if (p.gpu_offload_ratio) unsupported.push_back("gpu_offload_ratio");
  if (p.cpu_threads) unsupported.push_back("cpu_threads");
  if (p.rope_frequency_base) unsupported.push_back("rope_frequency_base");
  if (p.rope_frequency_scale) unsupported.push_back("rope_frequency_scale");
  if (p.parallel_slots) unsupported.push_back("parallel_slots");
  if (p.ttl) unsupported.push_back("ttl");
  if (!unsupported.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "LM Studio's REST load (/api/v1/models/load) cannot set ", absl::StrJoin(unsupported, ", "),
        "; load through the sdk_ws or cli driver, or leave them unset"));
  }
  Json body{{"model", p.model_key}, {"echo_load_config", true}};
  if (p.context_length) body["context_length"] = *p.context_length;
  if (p.eval_batch_size) body["eval_batch_size"] = *p.eval_batch_size;
  if (p.flash_attention) body["flash_attention"] = *p.flash_attention;
  return body.dump();
}

absl::StatusOr<InstanceInfo> ParseLoadResponse(absl::string_view body, const LoadParams& p) {
  auto json = http::ParseJson(body, "the /api/v1/models/load answer");
  if (!json.ok()) return json.status();
  InstanceInfo out;
  out.identifier = JsonString(*json, "instance_id");
  if (out.identifier.empty()) {
    return absl::InternalError(absl::StrCat("the /api/v1/models/load answer has no instance_id: ",
                                            http::Snippet(body)));
  }
  out.model_key = p.model_key;
  out.type = TypeOf(JsonString(*json, "type"));
  out.context_length = p.context_length.value_or(0);
  if (const Json* config = JsonMember(*json, "load_config")) {
    if (auto n = JsonInt32(*config, "context_length")) out.context_length = *n;
    out.parallel_slots = SlotsOf(*config, out.type);
  }
  return out;
}

std::string BuildUnloadBody(const std::string& instance_id) {
  return Json{{"instance_id", instance_id}}.dump();
}

}  // namespace lmgate::backends::rest
