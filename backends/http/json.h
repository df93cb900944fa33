// The one JSON helper of the HTTP drivers: nlohmann::json plus lenient typed getters. LM Studio
// adds and drops fields between versions, so readers take what is there and never throw.
//
// Include only from .cc files (nlohmann/json.hpp is heavy). Stateless, thread-safe.
#ifndef LMGATE_BACKENDS_HTTP_JSON_H_
#define LMGATE_BACKENDS_HTTP_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lmgate::backends::http {

using Json = nlohmann::json;

// Parses `text` (backends/json.h: nested at most kMaxJsonDepth levels). INTERNAL naming `what`
// ("the /v1/models answer") and a snippet of the text when it is not JSON or nested deeper.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// The member `key` of an object, or nullptr when `obj` is no object or the member is absent or
// null.
const Json* JsonMember(const Json& obj, const char* key);

// Typed getters: the member's value when present with a compatible type, else the default /
// nullopt. Numbers convert between integer and floating point; strings never become numbers.
// Integers: floats are truncated toward zero; a value outside the result type's range is nullopt
// (never a wrapped or undefined conversion: the host's bytes are untrusted).
std::string JsonString(const Json& obj, const char* key, absl::string_view def = "");
std::optional<double> JsonDouble(const Json& obj, const char* key);
std::optional<int64_t> JsonInt(const Json& obj, const char* key);
std::optional<int> JsonInt32(const Json& obj, const char* key);
std::optional<bool> JsonBool(const Json& obj, const char* key);

// `text` shortened to at most `max` bytes for error messages, with "..." when cut.
std::string Snippet(absl::string_view text, size_t max = 200);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_JSON_H_
