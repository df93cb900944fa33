// The text side of the config file (internal to //services:config): reading the JSON document
// with positions in its errors, and printing a Config back as the same JSON shape.
#ifndef LMGATE_SERVICES_CONFIG_TEXT_H_
#define LMGATE_SERVICES_CONFIG_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lmgate::services {

// Parses `text` (`//` and `/* */` comments allowed). INVALID_ARGUMENT "SOURCE:LINE:COLUMN: ..."
// for a syntax error, and "SOURCE: duplicate key "k" at line L (in OBJECT; first at line F)" for
// a key given twice in one object at any depth (nlohmann would silently keep the last one).
absl::StatusOr<nlohmann::json> ParseConfigText(const std::string& text, const std::string& source);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_CONFIG_TEXT_H_
