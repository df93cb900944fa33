#include "tests/emulator/kv_config.h"

namespace lmgate::emulator {

using nlohmann::json;

KvConfig KvConfig::FromConfig(const json& config) {
  KvConfig kv;
  if (!config.is_object() || !config.contains("fields") || !config["fields"].is_array()) return kv;
  for (const json& f : config["fields"]) {
    if (f.is_object() && f.contains("key") && f["key"].is_string() && f.contains("value")) {
      kv.fields_[f["key"].get<std::string>()] = f["value"];
    }
  }
  return kv;
}

KvConfig KvConfig::FromStack(const json& stack) {
  KvConfig kv;
  if (!stack.is_object() || !stack.contains("layers") || !stack["layers"].is_array()) return kv;
  for (const json& layer : stack["layers"]) {
    if (!layer.is_object() || !layer.contains("config")) continue;
    KvConfig one = FromConfig(layer["config"]);
    for (auto& [k, v] : one.fields_) kv.fields_[k] = std::move(v);
  }
  return kv;
}

const json* KvConfig::Get(const std::string& key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? nullptr : &it->second;
}

std::optional<double> KvConfig::Number(const std::string& key) const {
  const json* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  if (v->is_object() && v->contains("checked") && v->contains("value")) {
    const json& checked = (*v)["checked"];
    const json& value = (*v)["value"];
    if (checked.is_boolean() && checked.get<bool>() && value.is_number()) return value.get<double>();
  }
  return std::nullopt;
}

std::optional<std::string> KvConfig::String(const std::string& key) const {
  const json* v = Get(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::optional<bool> KvConfig::Bool(const std::string& key) const {
  const json* v = Get(key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

json KvConfig::ToJson() const {
  json fields = json::array();
  for (const auto& [k, v] : fields_) fields.push_back({{"key", k}, {"value", v}});
  return {{"fields", fields}};
}

}  // namespace lmgate::emulator
