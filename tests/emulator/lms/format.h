// Output of the `lms` stand-in, byte for byte where the real CLI (lms@07b7252,
// shared/reference/lmstudio-protocol.md §5) is deterministic: the --json shapes, the tables, the
// sizes and durations, and the `fuzzy` matching `lms load` uses to pick a model.
//
// Pure functions, thread-safe.
#ifndef LMGATE_TESTS_EMULATOR_LMS_FORMAT_H_
#define LMGATE_TESTS_EMULATOR_LMS_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace lmgate::lms {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The real CLI prints what the SDK returned after validating it with zod, which keeps only the
// schema's keys, in the schema's order (ModelInfoBase.ts, LLMModelInfo.ts, ...). These views do
// the same with the host's JSON: known keys only, schema order, integral numbers as integers.
OrderedJson ModelInfoView(const Json& info);     // `lms ls --json` elements
OrderedJson InstanceInfoView(const Json& info);  // ModelInstanceInfo without instanceReference
// One `lms ps --json` element: the instance view + status, queued, parallel (null when unknown).
OrderedJson PsEntry(const Json& info, const Json& processing_state,
                    std::optional<int64_t> parallel);
// JSON.stringify (compact).
std::string Stringify(const OrderedJson& value);

// formatBytes.ts / formatElapsedTime.ts.
std::string FormatSizeBytes1000(int64_t bytes);  // "2.50 GB"
std::string FormatSizeBytes1024(int64_t bytes);  // "2.33 GiB"
std::string FormatElapsedTime(double ms);        // "52.00ms", "1.50s", "1m 2.00s"
std::string FormatTimeLean(double ms);           // "59m", "1h", "30s"
// architectureStylizations.ts: "qwen2" -> "Qwen2", unknown names unchanged.
std::string ArchitectureName(const std::string& architecture);

// columnify with columnSplitter "    ", every column left-aligned and padded to its width
// (the last one too), headings first. `rows` cells may be empty.
std::string Columnify(const std::vector<std::string>& headings,
                      const std::vector<std::vector<std::string>>& rows);

// fuzzy@0.1.3 `filter(pattern, items)`: indices of the items containing the pattern's characters
// in order (case-insensitive), best score first, ties in item order.
std::vector<size_t> FuzzyFilter(const std::string& pattern, const std::vector<std::string>& items);

// makeTitledPrettyError(title, body).message with the body already laid out.
std::string TitledError(const std::string& title, const std::string& body);

// Non-throwing member access (the host's JSON may have any shape): the member, or null.
const Json& Field(const Json& object, const char* key);
// The member when it is a string, else "".
std::string StrField(const Json& object, const char* key);

// A value of the host's KV config ({"fields":[{key,value}]}): the last field named `key`.
std::optional<Json> KvValue(const Json& config, const std::string& key);

}  // namespace lmgate::lms

#endif  // LMGATE_TESTS_EMULATOR_LMS_FORMAT_H_
