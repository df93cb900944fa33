// The HTTP drivers' JSON: nlohmann::json, the parse that names the answer, and the typed getters
// every driver shares (backends/json.h). LM Studio
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
#include "backends/json.h"

namespace lmgate::backends::http {

using Json = nlohmann::json;

// Parses `text` (backends/json.h: nested at most kMaxJsonDepth levels). INTERNAL naming `what`
// ("the /v1/models answer") and a snippet of the text when it is not JSON or nested deeper.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// The typed getters (backends/json.h: null is absent, integers are integral numbers in range,
// strings never become numbers), the same for every driver.
using backends::JsonBool;
using backends::JsonDouble;
using backends::JsonInt;
using backends::JsonInt32;
using backends::JsonMember;
using backends::JsonString;

// `text` shortened to at most `max` bytes for error messages, with "..." when cut.
std::string Snippet(absl::string_view text, size_t max = 200);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_JSON_H_
