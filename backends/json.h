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

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_JSON_H_
