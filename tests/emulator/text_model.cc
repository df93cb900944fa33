#include "tests/emulator/text_model.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;

constexpr std::array<absl::string_view, 7> kSpecialTokens = {
    "<|im_start|>", "<|im_end|>", "<|tools|>", "<think>", "</think>", "<tool_call>", "</tool_call>"};

// splitmix64: small, fast, and identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Unit() { return static_cast<double>(Next() >> 11) / 9007199254740992.0; }

 private:
  uint64_t state_;
};

constexpr std::array<absl::string_view, 96> kWords = {
    "the",     "model",    "answer",  "quiet",   "river",    "light",    "system",  "gateway",
    "token",   "stream",   "simple",  "green",   "window",   "signal",   "bright",  "morning",
    "careful", "engine",   "paper",   "garden",  "follows",  "carries",  "returns", "moves",
    "builds",  "keeps",    "reads",   "writes",  "finds",    "holds",    "opens",   "turns",
    "a",       "an",       "of",      "to",      "and",      "in",       "on",      "with",
    "every",   "small",    "large",   "steady",  "clear",    "useful",   "local",   "remote",
    "request", "response", "context", "message", "history",  "reason",   "detail",  "result",
    "north",   "summer",   "winter",  "stone",   "cloud",    "harbor",   "bridge",  "forest",
    "is",      "was",      "will",    "can",     "should",   "might",    "often",   "always",
    "quickly", "slowly",   "gently",  "clearly", "together", "again",    "today",   "here",
    "hello",   "from",     "friend",  "world",   "story",    "question", "number",  "value",
    "first",   "next",     "last",    "other",   "same",     "new",      "old",     "true"};

bool IsWordByte(unsigned char c) { return std::isalnum(c) != 0 || c >= 0x80 || c == '_'; }

int32_t SpecialId(absl::string_view piece) {
  for (size_t i = 0; i < kSpecialTokens.size(); ++i) {
    if (kSpecialTokens[i] == piece) return static_cast<int32_t>(i + 1);
  }
  return 0;
}

size_t SpecialAt(absl::string_view text, size_t i) {
  if (text[i] != '<') return 0;
  for (absl::string_view s : kSpecialTokens) {
    if (text.substr(i, s.size()) == s) return s.size();
  }
  return 0;
}

void AppendTokens(absl::string_view text, TokenKind kind, std::vector<PlannedToken>* out,
                  ToolPart part = ToolPart::kNone, int tool_call = -1) {
  for (Token& t : Tokenize(text)) out->push_back({std::move(t.text), kind, part, tool_call});
}

// Sentences of words until at least `target` tokens were produced.
std::string Prose(Rng& rng, int target) {
  std::string out;
  int tokens = 0;
  while (tokens < target) {
    const int words = static_cast<int>(rng.Range(5, 12));
    for (int w = 0; w < words; ++w) {
      std::string word(kWords[rng.Next() % kWords.size()]);
      if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      if (!out.empty()) out += ' ';
      out += word;
      ++tokens;
      if (w > 2 && w + 2 < words && rng.Range(0, 7) == 0) {
        out += ',';
        ++tokens;
      }
    }
    out += '.';
    ++tokens;
  }
  return out;
}

const json* ResolveRef(const json& root, const json& schema) {
  if (!schema.is_object() || !schema.contains("$ref") || !schema["$ref"].is_string()) return &schema;
  std::string ref = schema["$ref"].get<std::string>();
  if (!absl::StartsWith(ref, "#/")) return &schema;
  const json* node = &root;
  for (absl::string_view part : absl::StrSplit(ref.substr(2), '/')) {
    if (!node->is_object() || !node->contains(std::string(part))) return &schema;
    node = &(*node)[std::string(part)];
  }
  return node;
}

json Sample(const json& root, const json& in, Rng& rng, int depth) {
  const json& schema = *ResolveRef(root, in);
  if (depth > 8 || !schema.is_object()) return nullptr;
  if (schema.contains("const")) return schema["const"];
  if (schema.contains("enum") && schema["enum"].is_array() && !schema["enum"].empty()) {
    return schema["enum"][rng.Next() % schema["enum"].size()];
  }
  for (const char* key : {"anyOf", "oneOf", "allOf"}) {
    if (schema.contains(key) && schema[key].is_array() && !schema[key].empty()) {
      for (const json& alt : schema[key]) {
        const json& r = *ResolveRef(root, alt);
        if (!(r.is_object() && r.value("type", "") == "null")) return Sample(root, r, rng, depth + 1);
      }
      return nullptr;
    }
  }
  std::string type;
  if (schema.contains("type")) {
    if (schema["type"].is_string()) type = schema["type"].get<std::string>();
    if (schema["type"].is_array()) {
      for (const json& t : schema["type"]) {
        if (t.is_string() && t.get<std::string>() != "null") {
          type = t.get<std::string>();
          break;
        }
      }
    }
  } else if (schema.contains("properties")) {
    type = "object";
  } else if (schema.contains("items")) {
    type = "array";
  }
  if (type == "object") {
    json obj = json::object();
    if (schema.contains("properties") && schema["properties"].is_object()) {
      for (auto& [name, sub] : schema["properties"].items()) {
        obj[name] = Sample(root, sub, rng, depth + 1);
      }
    }
    return obj;
  }
  if (type == "array") {
    const int64_t lo = schema.value("minItems", int64_t{1});
    const int64_t hi = std::max(lo, schema.value("maxItems", lo + 2));
    const int64_t n = rng.Range(lo, std::min(hi, lo + 2));
    json arr = json::array();
    const json items = schema.value("items", json::object());
    for (int64_t i = 0; i < n; ++i) arr.push_back(Sample(root, items, rng, depth + 1));
    return arr;
  }
  if (type == "integer" || type == "number") {
    double lo = schema.value("minimum", 0.0);
    double hi = schema.value("maximum", lo + 100.0);
    if (schema.contains("exclusiveMinimum") && schema["exclusiveMinimum"].is_number()) {
      lo = schema["exclusiveMinimum"].get<double>() + 1;
    }
    if (schema.contains("exclusiveMaximum") && schema["exclusiveMaximum"].is_number()) {
      hi = schema["exclusiveMaximum"].get<double>() - 1;
    }
    const int64_t v = rng.Range(static_cast<int64_t>(std::ceil(lo)),
                                std::max(static_cast<int64_t>(std::ceil(lo)),
                                         static_cast<int64_t>(std::floor(hi))));
    return v;
  }
  if (type == "boolean") return rng.Range(0, 1) == 1;
  if (type == "null") return nullptr;
  if (type == "string" || type.empty()) {
    const std::string format = schema.value("format", "");
    if (format == "date") return "2024-05-17";
    if (format == "date-time") return "2024-05-17T12:00:00Z";
    if (format == "email") return "user@example.com";
    if (format == "uri" || format == "url") return "https://example.com/item";
    if (format == "uuid") return "3f1c2a8e-9b7d-4c1e-8a2f-5d6e7f8a9b0c";
    std::string s = std::string(kWords[rng.Next() % kWords.size()]);
    const int64_t extra = rng.Range(0, 2);
    for (int64_t i = 0; i < extra; ++i) absl::StrAppend(&s, " ", kWords[rng.Next() % kWords.size()]);
    const size_t min_len = schema.value("minLength", size_t{0});
    const size_t max_len = schema.value("maxLength", size_t{1} << 20);
    while (s.size() < min_len) s += 'a';
    if (s.size() > max_len) s.resize(max_len);
    return s;
  }
  return nullptr;
}

std::string ToolsPreamble(const std::vector<ToolDefinition>& tools) {
  json arr = json::array();
  for (const ToolDefinition& t : tools) {
    json j = {{"name", t.name}};
    if (!t.description.empty()) j["description"] = t.description;
    if (!t.parameters.is_null()) j["parameters"] = t.parameters;
    arr.push_back(std::move(j));
  }
  return arr.dump();
}

}  // namespace

uint64_t Fnv1a64(absl::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::vector<Token> Tokenize(absl::string_view text) {
  std::vector<Token> out;
  auto emit = [&](absl::string_view piece) {
    int32_t id = SpecialId(piece);
    if (id == 0) id = 100 + static_cast<int32_t>(Fnv1a64(piece) % 150000);
    out.push_back({std::string(piece), id});
  };
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (size_t s = SpecialAt(text, i); s > 0) {
      emit(text.substr(i, s));
      i += s;
      continue;
    }
    if (text[i] == '\n' || text[i] == '\r') {
      emit(text.substr(i, 1));
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < n && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i == n || text[i] == '\n' || text[i] == '\r' || SpecialAt(text, i) > 0) {
      emit(text.substr(start, i - start));
      continue;
    }
    if (IsWordByte(static_cast<unsigned char>(text[i]))) {
      while (i < n && IsWordByte(static_cast<unsigned char>(text[i]))) ++i;
    } else {
      ++i;
    }
    emit(text.substr(start, i - start));
  }
  return out;
}

std::string RenderPrompt(const PromptInput& input) {
  if (input.raw_prompt.has_value()) return *input.raw_prompt;
  std::string out;
  if (!input.tools.empty()) absl::StrAppend(&out, "<|tools|>", ToolsPreamble(input.tools), "\n");
  for (const ChatMessage& m : input.messages) {
    absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.text);
    for (const ToolCall& c : m.tool_calls) {
      absl::StrAppend(&out, "<tool_call>",
                      json{{"name", c.name}, {"arguments", c.arguments}}.dump(), "</tool_call>");
    }
    absl::StrAppend(&out, "<|im_end|>\n");
  }
  absl::StrAppend(&out, "<|im_start|>assistant\n");
  return out;
}

GenerationPlan PlanGeneration(const ModelSpec& model, const PromptInput& input,
                              const GenerationOptions& options) {
  const std::string prompt = RenderPrompt(input);
  const uint64_t base =
      Fnv1a64(absl::StrCat(model.model_key, "\x1f", prompt, "\x1f", options.seed));
  GenerationPlan plan;

  const bool structured = options.json_schema.has_value();
  if (model.reasoning && options.allow_reasoning && !structured) {
    Rng rng(base ^ 0x5245415330ULL);
    plan.tokens.push_back({"<think>", TokenKind::kReasoningStartTag});
    AppendTokens(Prose(rng, static_cast<int>(rng.Range(8, 24))), TokenKind::kReasoning,
                 &plan.tokens);
    plan.tokens.push_back({"</think>", TokenKind::kReasoningEndTag});
  }

  const bool last_is_user = !input.messages.empty() && input.messages.back().role == "user";
  const bool call_tool = !input.tools.empty() && !input.raw_prompt.has_value() &&
                         (options.tool_choice == "required" ||
                          (options.tool_choice != "none" && last_is_user));
  if (call_tool) {
    const std::string last_user = absl::AsciiStrToLower(
        input.messages.empty() ? std::string() : input.messages.back().text);
    const ToolDefinition* tool = &input.tools.front();
    for (const ToolDefinition& t : input.tools) {
      if (!t.name.empty() && absl::StrContains(last_user, absl::AsciiStrToLower(t.name))) {
        tool = &t;
        break;
      }
    }
    ToolCall call;
    call.name = tool->name;
    call.id = std::to_string(100000000 + Fnv1a64(absl::StrCat(base, tool->name)) % 900000000);
    call.arguments = tool->parameters.is_null()
                         ? json::object()
                         : SampleJsonForSchema(tool->parameters, base ^ 0x544F4F4CULL);
    if (!call.arguments.is_object()) call.arguments = json::object();
    plan.tokens.push_back({"<tool_call>", TokenKind::kToolCall, ToolPart::kBegin, 0});
    AppendTokens(absl::StrCat("{\"name\":", json(call.name).dump(), ",\"arguments\":"),
                 TokenKind::kToolCall, &plan.tokens, ToolPart::kName, 0);
    AppendTokens(call.arguments.dump(), TokenKind::kToolCall, &plan.tokens, ToolPart::kArguments, 0);
    plan.tokens.push_back({"}", TokenKind::kToolCall, ToolPart::kEnd, 0});
    plan.tokens.push_back({"</tool_call>", TokenKind::kToolCall, ToolPart::kEnd, 0});
    plan.tool_calls.push_back(std::move(call));
    return plan;
  }

  if (structured) {
    AppendTokens(SampleJsonForSchema(*options.json_schema, base ^ 0x4A534F4EULL).dump(),
                 TokenKind::kContent, &plan.tokens);
    return plan;
  }
  Rng rng(base);
  const int target = static_cast<int>(
      rng.Range(options.min_content_tokens, std::max(options.min_content_tokens,
                                                     options.max_content_tokens)));
  AppendTokens(Prose(rng, target), TokenKind::kContent, &plan.tokens);
  return plan;
}

std::vector<ToolDefinition> ToolsFromJson(const nlohmann::json& tools) {
  std::vector<ToolDefinition> out;
  if (!tools.is_array()) return out;
  for (const json& t : tools) {
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object()) continue;
    const json& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string()) continue;
    ToolDefinition d;
    d.name = f["name"].get<std::string>();
    if (f.contains("description") && f["description"].is_string()) {
      d.description = f["description"].get<std::string>();
    }
    if (f.contains("parameters") && f["parameters"].is_object()) d.parameters = f["parameters"];
    out.push_back(std::move(d));
  }
  return out;
}

nlohmann::json SampleJsonForSchema(const nlohmann::json& schema, uint64_t seed) {
  Rng rng(seed);
  return Sample(schema, schema, rng, 0);
}

std::vector<float> Embed(const ModelSpec& model, absl::string_view text) {
  const size_t dim = static_cast<size_t>(model.embedding_dimension);
  std::vector<double> acc(dim, 0.0);
  std::vector<Token> tokens = Tokenize(text);
  if (tokens.empty()) tokens.push_back({"", 0});
  for (const Token& t : tokens) {
    std::string word = absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.text));
    Rng rng(Fnv1a64(absl::StrCat(model.model_key, "\x1f", word)));
    for (size_t i = 0; i < dim; ++i) acc[i] += rng.Unit() * 2.0 - 1.0;
  }
  double norm = 0;
  for (double v : acc) norm += v * v;
  norm = std::sqrt(norm);
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(norm > 0 ? acc[i] / norm : 0.0);
  return out;
}

}  // namespace lmgate::emulator
