#include "backends/http/json.h"

#include "absl/strings/str_cat.h"

namespace lmgate::backends::http {

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(what, " is not valid JSON: \"", Snippet(text), "\""));
  }
  return parsed;
}

const Json* JsonMember(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string JsonString(const Json& obj, const char* key, absl::string_view def) {
  const Json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_string()) return std::string(def);
  return v->get<std::string>();
}

std::optional<double> JsonDouble(const Json& obj, const char* key) {
  const Json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::optional<int64_t> JsonInt(const Json& obj, const char* key) {
  const Json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  if (v->is_number_float()) return static_cast<int64_t>(v->get<double>());
  return v->get<int64_t>();
}

std::optional<bool> JsonBool(const Json& obj, const char* key) {
  const Json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::string Snippet(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  return absl::StrCat(text.substr(0, max), "...");
}

}  // namespace lmgate::backends::http
