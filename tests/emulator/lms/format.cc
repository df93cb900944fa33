#include "tests/emulator/lms/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace lmgate::lms {
namespace {

// JS numbers print integral values without a fraction; keep the host's integers as integers.
OrderedJson Normalize(const Json& value) {
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.007199254740992e15) {
      return OrderedJson(static_cast<int64_t>(d));
    }
    return OrderedJson(d);
  }
  return OrderedJson::parse(value.dump());
}

void Copy(OrderedJson& out, const Json& in, const char* key) {
  if (!in.is_object()) return;
  auto it = in.find(key);
  if (it == in.end()) return;
  if (std::string(key) == "quantization") {
    if (!it->is_object()) return;
    OrderedJson q = OrderedJson::object();
    Copy(q, *it, "name");
    Copy(q, *it, "bits");
    out[key] = std::move(q);
    return;
  }
  out[key] = Normalize(*it);
}

bool IsLlm(const Json& info) {
  return StrField(info, "type") == "llm";
}

void CopyBase(OrderedJson& out, const Json& info) {
  for (const char* key :
       {"type", "modelKey", "format", "displayName", "publisher", "path", "sizeBytes",
        "indexedModelIdentifier", "deviceIdentifier", "paramsString", "architecture",
        "quantization", "variants", "selectedVariant"}) {
    Copy(out, info, key);
  }
}

std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

// Display width as wcwidth counts it for the characters the CLI prints (one per code point).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

OrderedJson ModelInfoView(const Json& info) {
  OrderedJson out = OrderedJson::object();
  CopyBase(out, info);
  if (IsLlm(info)) {
    Copy(out, info, "vision");
    Copy(out, info, "trainedForToolUse");
  }
  Copy(out, info, "maxContextLength");
  return out;
}

OrderedJson InstanceInfoView(const Json& info) {
  OrderedJson out = OrderedJson::object();
  CopyBase(out, info);
  for (const char* key : {"identifier", "ttlMs", "lastUsedTime"}) Copy(out, info, key);
  if (IsLlm(info)) {
    Copy(out, info, "vision");
    Copy(out, info, "trainedForToolUse");
  }
  Copy(out, info, "maxContextLength");
  Copy(out, info, "contextLength");
  return out;
}

OrderedJson PsEntry(const Json& info, const Json& processing_state,
                    std::optional<int64_t> parallel) {
  OrderedJson out = InstanceInfoView(info);
  Copy(out, processing_state, "status");
  Copy(out, processing_state, "queued");
  out["parallel"] = parallel.has_value() ? OrderedJson(*parallel) : OrderedJson(nullptr);
  return out;
}

std::string Stringify(const OrderedJson& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, OrderedJson::error_handler_t::replace);
}

std::string FormatSizeBytes1000(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b < 1e3) return absl::StrCat(bytes, " B");
  if (b < 1e6) return Fixed(b / 1e3, 2) + " KB";
  if (b < 1e9) return Fixed(b / 1e6, 2) + " MB";
  if (b < 1e12) return Fixed(b / 1e9, 2) + " GB";
  return Fixed(b / 1e12, 2) + " TB";
}

std::string FormatSizeBytes1024(int64_t bytes) {
  static const char* kUnits[] = {"Bytes", "KiB", "MiB", "GiB", "TiB"};
  if (bytes == 0) return "0 Bytes";
  const double b = static_cast<double>(bytes);
  int index = static_cast<int>(std::floor(std::log(b) / std::log(1024.0)));
  index = std::max(0, std::min(index, 4));
  return absl::StrCat(Fixed(b / std::pow(1024.0, index), index == 0 ? 0 : 2), " ", kUnits[index]);
}

std::string FormatElapsedTime(double ms) {
  constexpr double kSec = 1000, kMin = 60 * kSec, kHour = 60 * kMin;
  std::vector<std::string> parts;
  bool started = false;
  if (ms >= kHour) {
    const double hours = std::floor(ms / kHour);
    parts.push_back(absl::StrCat(static_cast<int64_t>(hours), "h"));
    ms -= hours * kHour;
    started = true;
  }
  if (ms >= kMin || started) {
    const double minutes = std::floor(ms / kMin);
    parts.push_back(absl::StrCat(static_cast<int64_t>(minutes), "m"));
    ms -= minutes * kMin;
    started = true;
  }
  if (ms >= kSec || started) {
    parts.push_back(Fixed(ms / kSec, 2) + "s");
    started = true;
  }
  if (!started) parts.push_back(Fixed(ms, 2) + "ms");
  std::string out;
  for (const std::string& p : parts) absl::StrAppend(&out, out.empty() ? "" : " ", p);
  return out;
}

std::string FormatTimeLean(double ms) {
  // Math.round: halves round up.
  auto round = [](double v) { return static_cast<int64_t>(std::floor(v + 0.5)); };
  if (ms >= 3600000) return absl::StrCat(round(ms / 3600000), "h");
  if (ms >= 60000) return absl::StrCat(round(ms / 60000), "m");
  return absl::StrCat(round(ms / 1000), "s");
}

std::string ArchitectureName(const std::string& architecture) {
  static const auto* kNames = new std::map<std::string, std::string>{
      {"phi2", "Phi-2"},       {"phi-2", "Phi-2"},         {"phi3", "Phi-3"},
      {"phi-3", "Phi-3"},      {"mistral", "Mistral"},     {"llama", "Llama"},
      {"gptneox", "GPT-NeoX"}, {"gpt-neo-x", "GPT-NeoX"},  {"gpt_neo_x", "GPT-NeoX"},
      {"mpt", "MPT"},          {"replit", "Replit"},       {"starcoder", "StarCoder"},
      {"falcon", "Falcon"},    {"qwen", "Qwen"},           {"qwen2", "Qwen2"},
      {"stablelm", "StableLM"}, {"mamba", "mamba"},        {"command-r", "Command R"},
      {"gemma", "Gemma"},      {"gemma2", "Gemma 2"},      {"deepseek2", "DeepSeek 2"},
      {"bert", "BERT"},        {"nomic-bert", "Nomic BERT"}, {"clip", "CLIP"}};
  auto it = kNames->find(absl::AsciiStrToLower(architecture));
  return it == kNames->end() ? architecture : it->second;
}

std::string Columnify(const std::vector<std::string>& headings,
                      const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headings.size(), 0);
  auto cell = [](const std::vector<std::string>& row, size_t i) {
    return i < row.size() ? row[i] : std::string();
  };
  for (size_t i = 0; i < headings.size(); ++i) {
    widths[i] = Width(headings[i]);
    for (const auto& row : rows) widths[i] = std::max(widths[i], Width(cell(row, i)));
  }
  std::string out;
  auto add_line = [&](const std::vector<std::string>& row) {
    if (!out.empty()) out.push_back('\n');
    for (size_t i = 0; i < headings.size(); ++i) {
      if (i > 0) out.append("    ");
      std::string c = cell(row, i);
      out.append(c);
      out.append(widths[i] - Width(c), ' ');
    }
  };
  add_line(headings);
  for (const auto& row : rows) add_line(row);
  return out;
}

std::vector<size_t> FuzzyFilter(const std::string& pattern, const std::vector<std::string>& items) {
  const std::string p = absl::AsciiStrToLower(pattern);
  std::vector<std::pair<double, size_t>> matches;  // (score, index); JS numbers
  for (size_t index = 0; index < items.size(); ++index) {
    const std::string s = absl::AsciiStrToLower(items[index]);
    size_t pi = 0;
    double total = 0, current = 0;
    for (char c : s) {
      if (pi < p.size() && c == p[pi]) {
        ++pi;
        current += 1 + current;  // consecutive matches score more than linearly
      } else {
        current = 0;
      }
      total += current;
    }
    if (pi == p.size()) matches.emplace_back(total, index);
  }
  std::stable_sort(matches.begin(), matches.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<size_t> out;
  for (const auto& m : matches) out.push_back(m.second);
  return out;
}

std::string TitledError(const std::string& title, const std::string& body) {
  return absl::StrCat(title, "\n\n", body);
}

const Json& Field(const Json& object, const char* key) {
  static const Json* kNull = new Json();
  if (!object.is_object()) return *kNull;
  auto it = object.find(key);
  return it == object.end() ? *kNull : *it;
}

std::string StrField(const Json& object, const char* key) {
  const Json& v = Field(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::optional<Json> KvValue(const Json& config, const std::string& key) {
  std::optional<Json> found;
  if (!config.is_object() || !config.contains("fields") || !config["fields"].is_array()) {
    return found;
  }
  for (const Json& field : config["fields"]) {
    if (StrField(field, "key") == key && field.contains("value")) {
      found = field["value"];
    }
  }
  return found;
}

}  // namespace lmgate::lms
