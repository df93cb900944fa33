#include "backends/json.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace lmgate::backends {

int JsonDepth(absl::string_view text, int stop_above) {
  int depth = 0;
  int deepest = 0;
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    switch (text[i]) {
      case '"':
        // Skip the string; a backslash escapes the next byte (\" and \\ included).
        for (++i; i < n && text[i] != '"'; ++i) {
          if (text[i] == '\\') ++i;
        }
        break;
      case '/':
        // Comments (strict JSON has no '/' outside strings: the parser rejects it there anyway).
        if (i + 1 < n && text[i + 1] == '/') {
          i = text.find('\n', i + 2);
          if (i == absl::string_view::npos) return deepest;
        } else if (i + 1 < n && text[i + 1] == '*') {
          i = text.find("*/", i + 2);
          if (i == absl::string_view::npos) return deepest;
          ++i;
        }
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_above) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                                JsonParseOptions options) {
  if (JsonDepth(text, options.max_depth) > options.max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is nested deeper than ", options.max_depth, " levels"));
  }
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                                               /*allow_exceptions=*/false,
                                               /*ignore_comments=*/options.allow_comments);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  }
  return value;
}

const nlohmann::json* JsonMember(const nlohmann::json& obj, absl::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> JsonAsInt(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // [-2^63, 2^63), both exact doubles; casting anything outside (1e300) is undefined behaviour.
    const double d = v.get<double>();
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return std::nullopt;
    const int64_t i = static_cast<int64_t>(d);
    if (static_cast<double>(i) != d) return std::nullopt;  // 1.5 is not an integer
    return i;
  }
  return std::nullopt;
}

std::string JsonString(const nlohmann::json& obj, absl::string_view key, absl::string_view def) {
  const nlohmann::json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_string()) return std::string(def);
  return v->get<std::string>();
}

std::optional<double> JsonDouble(const nlohmann::json& obj, absl::string_view key) {
  const nlohmann::json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::optional<int64_t> JsonInt(const nlohmann::json& obj, absl::string_view key) {
  const nlohmann::json* v = JsonMember(obj, key);
  if (v == nullptr) return std::nullopt;
  return JsonAsInt(*v);
}

std::optional<int> JsonInt32(const nlohmann::json& obj, absl::string_view key) {
  std::optional<int64_t> v = JsonInt(obj, key);
  if (!v.has_value() || *v < std::numeric_limits<int>::min() ||
      *v > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

std::optional<bool> JsonBool(const nlohmann::json& obj, absl::string_view key) {
  const nlohmann::json* v = JsonMember(obj, key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

}  // namespace lmgate::backends
