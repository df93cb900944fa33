#include "backends/http/json.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "backends/json.h"

namespace lmgate::backends::http {

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  absl::StatusOr<Json> parsed = ParseBoundedJson(text, what);
  if (!parsed.ok()) {
    return absl::InternalError(
        absl::StrCat(parsed.status().message(), ": \"", Snippet(text), "\""));
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
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v->is_number_float()) {
    // [-2^63, 2^63), both exact doubles; casting anything outside (1e300) is undefined behaviour.
    const double d = v->get<double>();
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return v->get<int64_t>();
}

std::optional<int> JsonInt32(const Json& obj, const char* key) {
  std::optional<int64_t> v = JsonInt(obj, key);
  if (!v.has_value() || *v < std::numeric_limits<int>::min() ||
      *v > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return static_cast<int>(*v);
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
