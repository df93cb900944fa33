// LM Studio KVConfig / KVConfigStack helpers (§1.4, §1.7). Unknown keys are kept but never
// interpreted; for duplicate keys the last layer / last field wins.
//
// Thread-safety: plain values.
#ifndef LMGATE_TESTS_EMULATOR_KV_CONFIG_H_
#define LMGATE_TESTS_EMULATOR_KV_CONFIG_H_

#include <map>
#include <optional>
#include <string>

#include "nlohmann/json.hpp"

namespace lmgate::emulator {

class KvConfig {
 public:
  KvConfig() = default;
  // {"fields":[{"key","value"}]}; anything malformed is skipped.
  static KvConfig FromConfig(const nlohmann::json& config);
  // {"layers":[{"layerName","config":{...}}]}; later layers override earlier ones.
  static KvConfig FromStack(const nlohmann::json& stack);

  void Set(const std::string& key, nlohmann::json value) { fields_[key] = std::move(value); }
  bool Has(const std::string& key) const { return fields_.count(key) > 0; }
  const nlohmann::json* Get(const std::string& key) const;
  // A number, or a {checked,value} whose checked is true. nullopt if absent/unchecked/not numeric.
  std::optional<double> Number(const std::string& key) const;
  std::optional<std::string> String(const std::string& key) const;
  std::optional<bool> Bool(const std::string& key) const;

  // {"fields":[...]} in key order.
  nlohmann::json ToJson() const;

 private:
  std::map<std::string, nlohmann::json> fields_;
};

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_KV_CONFIG_H_
