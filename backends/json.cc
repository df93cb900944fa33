#include "backends/json.h"

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

}  // namespace lmgate::backends
