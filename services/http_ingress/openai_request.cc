#include "services/http_ingress/openai_request.h"

#include <cmath>
#include <initializer_list>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/json.h"
#include "services/http_ingress/errors.h"

namespace lmgate::http_ingress {
namespace {

using Json = nlohmann::json;

// The body's own levels around its deepest JSON field (a tool's parameters sit 4 deep).
constexpr int kBodyLevels = 8;

absl::StatusOr<Json> ParseObject(absl::string_view body, int max_json_depth) {
  backends::JsonParseOptions opts;
  opts.max_depth = max_json_depth + kBodyLevels;
  auto json = backends::ParseBoundedJson(body, "the request body", opts);
  if (!json.ok()) return json.status();
  if (!json->is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return json;
}

absl::Status CheckKnown(const Json& obj, std::initializer_list<const char*> known,
                        const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    if (!ok) {
      return InvalidField(where + key, "unknown field (lmgate does not support it)");
    }
  }
  return absl::OkStatus();
}

const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::optional<double>> Number(const Json& obj, const char* key) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return InvalidField(key, "must be a number");
  return v->get<double>();
}

absl::StatusOr<std::optional<int64_t>> Integer(const Json& obj, const char* key) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  return InvalidField(key, "must be an integer");
}

absl::StatusOr<bool> Bool(const Json& obj, const char* key) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) return InvalidField(key, "must be true or false");
  return v->get<bool>();
}

absl::StatusOr<std::string> String(const Json& obj, const char* key, const std::string& field) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return InvalidField(field, "must be a string");
  return v->get<std::string>();
}

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The fields chat and completions share: model, stream, sampling, ttl, and what lmgate refuses.
absl::Status CommonFields(const Json& j, std::string* model, StreamOptions* stream,
                          v1::SamplingParams* s, google::protobuf::Duration* ttl, bool* has_ttl) {
  auto m = String(j, "model", "model");
  if (!m.ok()) return m.status();
  *model = *m;
  auto st = Bool(j, "stream");
  if (!st.ok()) return st.status();
  stream->stream = *st;
  if (const Json* so = Member(j, "stream_options")) {
    if (!so->is_object()) return InvalidField("stream_options", "must be an object");
    if (auto k = CheckKnown(*so, {"include_usage"}, "stream_options."); !k.ok()) return k;
    auto u = Bool(*so, "include_usage");
    if (!u.ok()) return InvalidField("stream_options.include_usage", "must be true or false");
    stream->include_usage = *u;
  }
  for (const char* key : {"temperature", "top_p", "min_p", "presence_penalty",
                          "frequency_penalty", "repeat_penalty"}) {
    auto v = Number(j, key);
    if (!v.ok()) return v.status();
    if (!*v) continue;
    const std::string k = key;
    if (k == "temperature") s->set_temperature(**v);
    if (k == "top_p") s->set_top_p(**v);
    if (k == "min_p") s->set_min_p(**v);
    if (k == "presence_penalty") s->set_presence_penalty(**v);
    if (k == "frequency_penalty") s->set_frequency_penalty(**v);
    if (k == "repeat_penalty") s->set_repeat_penalty(**v);
  }
  auto top_k = Integer(j, "top_k");
  if (!top_k.ok()) return top_k.status();
  if (*top_k) {
    if (**top_k < -1 || **top_k > INT32_MAX) return InvalidField("top_k", "is out of range");
    if (**top_k > 0) s->set_top_k(static_cast<int>(**top_k));  // -1/0: no top-k, as LM Studio
  }
  std::optional<int64_t> max_tokens;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    auto v = Integer(j, key);
    if (!v.ok()) return v.status();
    if (!*v) continue;
    if (**v < 1 || **v > INT32_MAX) return InvalidField(key, "must be at least 1");
    max_tokens = **v;
  }
  if (max_tokens) s->set_max_tokens(static_cast<int>(*max_tokens));
  auto seed = Integer(j, "seed");
  if (!seed.ok()) return seed.status();
  if (*seed) s->set_seed(**seed);
  if (const Json* stop = Member(j, "stop")) {
    if (stop->is_string()) {
      s->add_stop(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const auto& e : *stop) {
        if (!e.is_string()) return InvalidField("stop", "must be a string or strings");
        s->add_stop(e.get<std::string>());
      }
    } else {
      return InvalidField("stop", "must be a string or an array of strings");
    }
  }
  auto t = Integer(j, "ttl");
  if (!t.ok()) return t.status();
  if (*t) {
    if (**t < 1) return InvalidField("ttl", "must be at least 1 second");
    ttl->set_seconds(**t);
    *has_ttl = true;
  }
  if (const Json* lb = Member(j, "logit_bias"); lb != nullptr && !(lb->is_object() && lb->empty())) {
    return InvalidField("logit_bias",
                        "is not supported: none of lmgate's LM Studio drivers can pass it");
  }
  auto n = Integer(j, "n");
  if (!n.ok()) return n.status();
  if (*n && **n != 1) return InvalidField("n", "only 1 choice per request is supported");
  if (const Json* lp = Member(j, "logprobs"); lp != nullptr && !(lp->is_boolean() && !*lp)) {
    return InvalidField("logprobs", "is not supported by lmgate");
  }
  if (Member(j, "top_logprobs") != nullptr) {
    return InvalidField("top_logprobs", "is not supported by lmgate");
  }
  if (const Json* u = Member(j, "user"); u != nullptr && !u->is_string()) {
    return InvalidField("user", "must be a string");
  }
  return absl::OkStatus();
}

#define LMGATE_COMMON_KEYS                                                                 \
  "model", "stream", "stream_options", "temperature", "top_p", "top_k", "min_p",           \
      "presence_penalty", "frequency_penalty", "repeat_penalty", "max_tokens",             \
      "max_completion_tokens", "seed", "stop", "ttl", "logit_bias", "n", "logprobs",       \
      "top_logprobs", "user"

// OpenAI message content: a string, or text parts [{"type":"text","text":...}].
absl::StatusOr<std::string> Content(const Json& m, const std::string& field) {
  const Json* c = Member(m, "content");
  if (c == nullptr) return std::string();
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) return InvalidField(field, "must be a string or an array of text parts");
  std::string out;
  for (size_t i = 0; i < c->size(); ++i) {
    const Json& p = (*c)[i];
    const std::string pf = absl::StrCat(field, "[", i, "]");
    if (!p.is_object() || p.value("type", "") != "text" || !p.contains("text") ||
        !p["text"].is_string()) {
      return InvalidField(pf, "only {\"type\":\"text\",\"text\":...} parts are supported");
    }
    out += p["text"].get<std::string>();
  }
  return out;
}

absl::Status Message(const Json& m, const std::string& field, v1::ChatMessage* out) {
  if (!m.is_object()) return InvalidField(field, "must be an object");
  if (auto k = CheckKnown(m, {"role", "content", "name", "tool_calls", "tool_call_id",
                              "reasoning_content", "refusal"},
                          field + ".");
      !k.ok()) {
    return k;
  }
  auto role = String(m, "role", field + ".role");
  if (!role.ok()) return role.status();
  out->set_role(*role == "developer" ? "system" : *role);
  auto content = Content(m, field + ".content");
  if (!content.ok()) return content.status();
  out->set_content(*content);
  auto name = String(m, "name", field + ".name");
  if (!name.ok()) return name.status();
  out->set_name(*name);
  auto tcid = String(m, "tool_call_id", field + ".tool_call_id");
  if (!tcid.ok()) return tcid.status();
  out->set_tool_call_id(*tcid);
  if (const Json* calls = Member(m, "tool_calls")) {
    if (!calls->is_array()) return InvalidField(field + ".tool_calls", "must be an array");
    for (size_t i = 0; i < calls->size(); ++i) {
      const Json& c = (*calls)[i];
      const std::string cf = absl::StrCat(field, ".tool_calls[", i, "]");
      const Json* fn = c.is_object() ? Member(c, "function") : nullptr;
      if (fn == nullptr || !fn->is_object()) {
        return InvalidField(cf + ".function", "must be an object with name and arguments");
      }
      auto* tc = out->add_tool_calls();
      auto id = String(c, "id", cf + ".id");
      auto fname = String(*fn, "name", cf + ".function.name");
      if (!id.ok()) return id.status();
      if (!fname.ok()) return fname.status();
      tc->set_id(*id);
      tc->set_name(*fname);
      if (const Json* args = Member(*fn, "arguments")) {
        tc->set_arguments(args->is_string() ? args->get<std::string>() : Dump(*args));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Tools(const Json& j, v1::ChatRequest* req) {
  if (const Json* tools = Member(j, "tools")) {
    if (!tools->is_array()) return InvalidField("tools", "must be an array");
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string tf = absl::StrCat("tools[", i, "]");
      if (!t.is_object() || t.value("type", "function") != "function") {
        return InvalidField(tf + ".type", "only function tools are supported");
      }
      const Json* fn = Member(t, "function");
      if (fn == nullptr || !fn->is_object()) return InvalidField(tf + ".function", "is missing");
      auto* out = req->add_tools();
      auto name = String(*fn, "name", tf + ".function.name");
      auto desc = String(*fn, "description", tf + ".function.description");
      if (!name.ok()) return name.status();
      if (!desc.ok()) return desc.status();
      out->set_name(*name);
      out->set_description(*desc);
      if (const Json* p = Member(*fn, "parameters")) {
        if (!p->is_object()) return InvalidField(tf + ".function.parameters", "must be an object");
        out->set_parameters_json_schema(Dump(*p));
      }
    }
  }
  const Json* choice = Member(j, "tool_choice");
  if (choice == nullptr) return absl::OkStatus();
  if (choice->is_string()) {
    const std::string c = choice->get<std::string>();
    if (c == "auto") req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_AUTO);
    else if (c == "none") req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_NONE);
    else if (c == "required") req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_REQUIRED);
    else return InvalidField("tool_choice", "must be auto, none, required or a function");
    return absl::OkStatus();
  }
  // {"type":"function","function":{"name":N}}: a call is required, and N is the only tool.
  const Json* fn = choice->is_object() ? Member(*choice, "function") : nullptr;
  if (fn == nullptr || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
    return InvalidField("tool_choice", "must be auto, none, required or a function");
  }
  const std::string name = (*fn)["name"].get<std::string>();
  v1::Tool chosen;
  bool found = false;
  for (const auto& t : req->tools()) {
    if (t.name() == name) chosen = t, found = true;
  }
  if (!found) return InvalidField("tool_choice.function.name", "names no tool in tools");
  req->clear_tools();
  *req->add_tools() = chosen;
  req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_REQUIRED);
  return absl::OkStatus();
}

absl::Status ResponseFormat(const Json& j, v1::StructuredOutput* out, bool* set) {
  const Json* rf = Member(j, "response_format");
  if (rf == nullptr) return absl::OkStatus();
  if (!rf->is_object()) return InvalidField("response_format", "must be an object");
  const std::string type = rf->value("type", "");
  if (type == "text") return absl::OkStatus();
  if (type == "json_object") {
    out->set_json_schema(R"({"type":"object"})");
    *set = true;
    return absl::OkStatus();
  }
  if (type != "json_schema") {
    return InvalidField("response_format.type", "must be text, json_object or json_schema");
  }
  const Json* js = Member(*rf, "json_schema");
  if (js == nullptr || !js->is_object()) {
    return InvalidField("response_format.json_schema", "must be an object with a schema");
  }
  const Json* schema = Member(*js, "schema");
  if (schema == nullptr || !schema->is_object()) {
    return InvalidField("response_format.json_schema.schema", "must be a JSON Schema object");
  }
  out->set_json_schema(Dump(*schema));
  auto name = String(*js, "name", "response_format.json_schema.name");
  if (!name.ok()) return name.status();
  out->set_name(*name);
  *set = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChatBody> ParseChatBody(absl::string_view body, int max_json_depth) {
  auto j = ParseObject(body, max_json_depth);
  if (!j.ok()) return j.status();
  if (auto k = CheckKnown(*j, {LMGATE_COMMON_KEYS, "messages", "tools", "tool_choice",
                               "response_format", "parallel_tool_calls"},
                          "");
      !k.ok()) {
    return k;
  }
  ChatBody out;
  v1::ChatRequest& req = out.request;
  bool has_ttl = false;
  if (auto st = CommonFields(*j, req.mutable_model(), &out.stream, req.mutable_sampling(),
                             req.mutable_ttl_hint(), &has_ttl);
      !st.ok()) {
    return st;
  }
  if (!has_ttl) req.clear_ttl_hint();
  const Json* msgs = Member(*j, "messages");
  if (msgs == nullptr || !msgs->is_array() || msgs->empty()) {
    return InvalidField("messages", "must be a non-empty array of messages");
  }
  for (size_t i = 0; i < msgs->size(); ++i) {
    if (auto st = Message((*msgs)[i], absl::StrCat("messages[", i, "]"), req.add_messages());
        !st.ok()) {
      return st;
    }
  }
  if (auto st = Tools(*j, &req); !st.ok()) return st;
  bool so = false;
  if (auto st = ResponseFormat(*j, req.mutable_structured_output(), &so); !st.ok()) return st;
  if (!so) req.clear_structured_output();
  if (const Json* p = Member(*j, "parallel_tool_calls"); p != nullptr && !p->is_boolean()) {
    return InvalidField("parallel_tool_calls", "must be true or false");
  }
  return out;
}

absl::StatusOr<CompletionBody> ParseCompletionBody(absl::string_view body, int max_json_depth) {
  auto j = ParseObject(body, max_json_depth);
  if (!j.ok()) return j.status();
  if (auto k = CheckKnown(*j, {LMGATE_COMMON_KEYS, "prompt", "echo", "suffix", "best_of"}, "");
      !k.ok()) {
    return k;
  }
  CompletionBody out;
  v1::CompleteRequest& req = out.request;
  bool has_ttl = false;
  if (auto st = CommonFields(*j, req.mutable_model(), &out.stream, req.mutable_sampling(),
                             req.mutable_ttl_hint(), &has_ttl);
      !st.ok()) {
    return st;
  }
  if (!has_ttl) req.clear_ttl_hint();
  const Json* p = Member(*j, "prompt");
  if (p != nullptr && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p == nullptr || !p->is_string()) {
    return InvalidField("prompt", "must be a string (or an array of exactly one string)");
  }
  req.set_prompt(p->get<std::string>());
  auto echo = Bool(*j, "echo");
  if (!echo.ok()) return echo.status();
  if (*echo) return InvalidField("echo", "is not supported by lmgate");
  if (Member(*j, "suffix") != nullptr) return InvalidField("suffix", "is not supported by lmgate");
  auto best_of = Integer(*j, "best_of");
  if (!best_of.ok()) return best_of.status();
  if (*best_of && **best_of != 1) return InvalidField("best_of", "only 1 is supported");
  return out;
}

absl::StatusOr<EmbeddingsBody> ParseEmbeddingsBody(absl::string_view body, int max_json_depth) {
  auto j = ParseObject(body, max_json_depth);
  if (!j.ok()) return j.status();
  if (auto k = CheckKnown(*j, {"model", "input", "encoding_format", "dimensions", "user", "ttl"},
                          "");
      !k.ok()) {
    return k;
  }
  EmbeddingsBody out;
  auto model = String(*j, "model", "model");
  if (!model.ok()) return model.status();
  out.request.set_model(*model);
  const Json* in = Member(*j, "input");
  if (in != nullptr && in->is_string()) {
    out.request.add_inputs(in->get<std::string>());
  } else if (in != nullptr && in->is_array() && !in->empty()) {
    for (const auto& e : *in) {
      if (!e.is_string()) {
        return InvalidField("input", "must be a string or an array of strings (token arrays "
                                     "are not supported)");
      }
      out.request.add_inputs(e.get<std::string>());
    }
  } else {
    return InvalidField("input", "must be a string or a non-empty array of strings");
  }
  auto fmt = String(*j, "encoding_format", "encoding_format");
  if (!fmt.ok()) return fmt.status();
  if (!fmt->empty() && *fmt != "float" && *fmt != "base64") {
    return InvalidField("encoding_format", "must be float or base64");
  }
  out.base64 = *fmt == "base64";
  if (Member(*j, "dimensions") != nullptr) {
    return InvalidField("dimensions", "is not supported: LM Studio returns the model's own size");
  }
  auto t = Integer(*j, "ttl");
  if (!t.ok()) return t.status();
  if (*t) {
    if (**t < 1) return InvalidField("ttl", "must be at least 1 second");
    out.request.mutable_ttl_hint()->set_seconds(**t);
  }
  return out;
}

std::string OpenAiFieldNames(absl::string_view message) {
  return absl::StrReplaceAll(message, {{"structured_output.json_schema",
                                        "response_format.json_schema.schema"},
                                       {"sampling.", ""},
                                       {"ttl_hint", "ttl"},
                                       {".parameters_json_schema", ".function.parameters"}});
}

}  // namespace lmgate::http_ingress
