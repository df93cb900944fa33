#include "backends/http/json.h"

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

std::string Snippet(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  return absl::StrCat(text.substr(0, max), "...");
}

}  // namespace lmgate::backends::http
