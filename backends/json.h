// The one bounded JSON parse of lmgate: every JSON text lmgate did not write itself (LM Studio's
// answers and frames, `lms` output, JSON fields of requests, the config file) is checked here for
// its nesting depth before nlohmann builds a value from it.
//
// Why: nlohmann's parser is iterative, but copying, comparing and dump()ing a value recurse once
// per level (3.11.2, Debian 12; its destructor does not), so a 20,000-level array parsed
// successfully overflowed the stack of whichever thread touched it next. The depth is counted by
// a linear scan without recursion, before any value exists.
//
// Include only from .cc files (nlohmann/json.hpp is heavy). Stateless, thread-safe.
#ifndef LMGATE_BACKENDS_JSON_H_
#define LMGATE_BACKENDS_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lmgate::backends {

// The deepest nesting accepted from the host, `lms` and the config file: far beyond any real
// answer (LM Studio's nest under 10 levels; a tool call's arguments follow the caller's schema,
// itself bounded by the config key max_json_depth, default 64), far below what the recursion
// above can take on any of lmgate's threads.
inline constexpr int kMaxJsonDepth = 256;

// The nesting depth of the arrays and objects in `text` ("1" is 0, "[]" 1, "[{}]" 2), counting
// only brackets outside strings and comments. Exact for valid JSON; for invalid text it is a
// figure the parser rejects anyway. Stops scanning once the depth exceeds `stop_above` (and
// returns that depth), so a huge text costs no more than the part that matters.
int JsonDepth(absl::string_view text, int stop_above = kMaxJsonDepth);

struct JsonParseOptions {
  int max_depth = kMaxJsonDepth;
  // `//` and `/* */` comments (the config file).
  bool allow_comments = false;
};

// Parses `text`. INVALID_ARGUMENT naming `what`: "<what> is nested deeper than N levels" (before
// anything is parsed) or "<what> is not valid JSON". Never throws.
absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                                JsonParseOptions options = {});

// --- Typed getters: the one way every driver reads a value of the host's JSON -----------------
// LM Studio adds and drops fields between versions, so readers take what is there and never
// throw. The same rules for every driver (backends/http/json.h and backends/sdk_ws/protocol.h
// are names for these):
// - a member that is null is absent;
// - numbers convert between integer and floating point; strings never become numbers;
// - an integer is an integral number: 8192 or 8192.0 (JS numbers), never 1.5 (not truncated);
//   one outside the result type's range is absent (never a wrapped or undefined conversion:
//   the host's bytes are untrusted).

// The member `key` of `obj`, or nullptr when `obj` is no object or the member is absent or null.
const nlohmann::json* JsonMember(const nlohmann::json& obj, absl::string_view key);
// `value` as an integer under the rules above.
std::optional<int64_t> JsonAsInt(const nlohmann::json& value);
std::string JsonString(const nlohmann::json& obj, absl::string_view key,
                       absl::string_view def = "");
std::optional<double> JsonDouble(const nlohmann::json& obj, absl::string_view key);
std::optional<int64_t> JsonInt(const nlohmann::json& obj, absl::string_view key);
std::optional<int> JsonInt32(const nlohmann::json& obj, absl::string_view key);
std::optional<bool> JsonBool(const nlohmann::json& obj, absl::string_view key);

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_JSON_H_
