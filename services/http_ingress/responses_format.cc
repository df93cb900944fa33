#include "services/http_ingress/responses_format.h"

#include <cmath>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "backends/json.h"
#include "services/http_ingress/errors.h"

namespace lmgate::http_ingress {
namespace {

using Json = nlohmann::json;

// The body's own levels around its deepest JSON field (a tool's parameters sit 3 deep).
constexpr int kBodyLevels = 8;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status CheckKnown(const Json& obj, std::initializer_list<const char*> known,
                        const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    if (!ok) return InvalidField(where + key, "unknown field (lmgate does not support it)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const Json& obj, const char* key, const std::string& field) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return InvalidField(field, "must be a string");
  return v->get<std::string>();
}

// Text of a message item's content: a string, or parts of type input_text / output_text / text.
absl::StatusOr<std::string> Text(const Json& item, const std::string& field) {
  const Json* c = Member(item, "content");
  if (c == nullptr) return std::string();
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) return InvalidField(field, "must be a string or an array of text parts");
  std::string out;
  for (size_t i = 0; i < c->size(); ++i) {
    const Json& p = (*c)[i];
    const std::string type = p.is_object() ? p.value("type", "") : "";
    if ((type != "input_text" && type != "output_text" && type != "text") || !p.contains("text") ||
        !p["text"].is_string()) {
      return InvalidField(absl::StrCat(field, "[", i, "]"),
                          "only input_text / output_text parts are supported");
    }
    out += p["text"].get<std::string>();
  }
  return out;
}

absl::Status InputItem(const Json& item, const std::string& field, v1::ChatRequest* req) {
  if (!item.is_object()) return InvalidField(field, "must be an object");
  const std::string type = item.value("type", "message");
  if (type == "function_call_output") {
    if (auto k = CheckKnown(item, {"type", "call_id", "output", "id", "status"}, field + ".");
        !k.ok())
      return k;
    auto call_id = String(item, "call_id", field + ".call_id");
    auto output = String(item, "output", field + ".output");
    if (!call_id.ok()) return call_id.status();
    if (!output.ok()) return output.status();
    auto* m = req->add_messages();
    m->set_role("tool");
    m->set_tool_call_id(*call_id);
    m->set_content(*output);
    return absl::OkStatus();
  }
  if (type == "function_call") {
    if (auto k =
            CheckKnown(item, {"type", "call_id", "name", "arguments", "id", "status"}, field + ".");
        !k.ok())
      return k;
    auto call_id = String(item, "call_id", field + ".call_id");
    auto name = String(item, "name", field + ".name");
    auto args = String(item, "arguments", field + ".arguments");
    if (!call_id.ok()) return call_id.status();
    if (!name.ok()) return name.status();
    if (!args.ok()) return args.status();
    auto* m = req->add_messages();
    m->set_role("assistant");
    auto* tc = m->add_tool_calls();
    tc->set_id(*call_id);
    tc->set_name(*name);
    tc->set_arguments(*args);
    return absl::OkStatus();
  }
  if (type != "message") {
    return InvalidField(field + ".type", "must be message, function_call or function_call_output");
  }
  if (auto k = CheckKnown(item, {"type", "role", "content", "id", "status"}, field + "."); !k.ok())
    return k;
  auto role = String(item, "role", field + ".role");
  if (!role.ok()) return role.status();
  if (*role != "user" && *role != "assistant" && *role != "system" && *role != "developer") {
    return InvalidField(field + ".role", "must be user, assistant, system or developer");
  }
  auto text = Text(item, field + ".content");
  if (!text.ok()) return text.status();
  auto* m = req->add_messages();
  m->set_role(*role == "developer" ? "system" : *role);
  m->set_content(*text);
  return absl::OkStatus();
}

absl::Status Tools(const Json& j, v1::ChatRequest* req) {
  if (const Json* tools = Member(j, "tools")) {
    if (!tools->is_array()) return InvalidField("tools", "must be an array");
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string tf = absl::StrCat("tools[", i, "]");
      if (!t.is_object() || t.value("type", "") != "function") {
        return InvalidField(tf + ".type", "only function tools are supported");
      }
      if (auto k = CheckKnown(t, {"type", "name", "description", "parameters", "strict"}, tf + ".");
          !k.ok())
        return k;
      auto* out = req->add_tools();
      auto name = String(t, "name", tf + ".name");
      auto desc = String(t, "description", tf + ".description");
      if (!name.ok()) return name.status();
      if (!desc.ok()) return desc.status();
      out->set_name(*name);
      out->set_description(*desc);
      if (const Json* p = Member(t, "parameters")) {
        if (!p->is_object()) return InvalidField(tf + ".parameters", "must be an object");
        out->set_parameters_json_schema(Dump(*p));
      }
    }
  }
  const Json* choice = Member(j, "tool_choice");
  if (choice == nullptr) return absl::OkStatus();
  const std::string c = choice->is_string() ? choice->get<std::string>() : "";
  if (c == "auto")
    req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_AUTO);
  else if (c == "none")
    req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_NONE);
  else if (c == "required")
    req->mutable_tool_choice()->set_mode(v1::ToolChoice::MODE_REQUIRED);
  else
    return InvalidField("tool_choice", "must be auto, none or required");
  return absl::OkStatus();
}

Json UsageOf(const backends::GenerateStats& s) {
  return {{"input_tokens", s.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", 0}}},
          {"output_tokens", s.completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", s.prompt_tokens + s.completion_tokens}};
}

std::string MessageId(const std::string& response_id) {
  return "msg_" + (response_id.rfind("resp_", 0) == 0 ? response_id.substr(5) : response_id);
}

Json MessageItem(const std::string& response_id, const std::string& text, const char* status) {
  Json content = Json::array();
  if (text.size() > 0 || std::string(status) == "completed") {
    content.push_back({{"type", "output_text"}, {"text", text}, {"annotations", Json::array()}});
  }
  return {{"type", "message"},
          {"id", MessageId(response_id)},
          {"status", status},
          {"role", "assistant"},
          {"content", std::move(content)}};
}

Json FunctionCallItem(const backends::ToolCall& c) {
  return {{"type", "function_call"}, {"id", "fc_" + c.id},       {"call_id", c.id},
          {"name", c.name},          {"arguments", c.arguments}, {"status", "completed"}};
}

bool Incomplete(const backends::GenerateResult& r) {
  using S = backends::StopReason;
  return r.stats.stop_reason == S::kMaxTokens || r.stats.stop_reason == S::kContextLength;
}

}  // namespace

absl::StatusOr<ResponsesBody> ParseResponsesBody(absl::string_view body, int max_json_depth) {
  backends::JsonParseOptions opts;
  opts.max_depth = max_json_depth + kBodyLevels;
  auto parsed = backends::ParseBoundedJson(body, "the request body", opts);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  if (auto k =
          CheckKnown(j,
                     {"model", "input", "instructions", "previous_response_id", "store",
                      "truncation", "max_output_tokens", "temperature", "top_p", "stream",
                      "metadata", "user", "tools", "tool_choice", "parallel_tool_calls", "text"},
                     "");
      !k.ok())
    return k;
  ResponsesBody out;
  v1::ChatRequest& req = out.request;
  auto model = String(j, "model", "model");
  if (!model.ok()) return model.status();
  req.set_model(*model);
  const Json* input = Member(j, "input");
  if (input == nullptr) return InvalidField("input", "is required");
  if (input->is_string()) {
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content(input->get<std::string>());
  } else if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i) {
      if (auto st = InputItem((*input)[i], absl::StrCat("input[", i, "]"), &req); !st.ok()) {
        return st;
      }
    }
  } else {
    return InvalidField("input", "must be a string or an array of input items");
  }
  if (const Json* v = Member(j, "instructions")) {
    if (!v->is_string()) return InvalidField("instructions", "must be a string");
    out.instructions = v->get<std::string>();
  }
  auto previous = String(j, "previous_response_id", "previous_response_id");
  if (!previous.ok()) return previous.status();
  out.previous_response_id = *previous;
  for (const char* key : {"store", "stream", "parallel_tool_calls"}) {
    const Json* v = Member(j, key);
    if (v == nullptr) continue;
    if (!v->is_boolean()) return InvalidField(key, "must be true or false");
    if (std::string(key) == "store") out.store = v->get<bool>();
    if (std::string(key) == "stream") out.stream = v->get<bool>();
  }
  if (const Json* v = Member(j, "truncation")) {
    const std::string t = v->is_string() ? v->get<std::string>() : "";
    if (t == "auto") {
      out.truncation = conversations::Truncation::kAuto;
    } else if (t != "disabled") {
      return InvalidField("truncation", "must be auto or disabled");
    }
  }
  if (const Json* v = Member(j, "max_output_tokens")) {
    const bool integral =
        v->is_number_integer() ||
        (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>());
    const double d = v->is_number() ? v->get<double>() : 0;
    if (!integral || d < 1 || d > INT32_MAX) {
      return InvalidField("max_output_tokens", "must be an integer of at least 1");
    }
    req.mutable_sampling()->set_max_tokens(static_cast<int>(d));
  }
  for (const char* key : {"temperature", "top_p"}) {
    const Json* v = Member(j, key);
    if (v == nullptr) continue;
    if (!v->is_number()) return InvalidField(key, "must be a number");
    if (std::string(key) == "temperature")
      req.mutable_sampling()->set_temperature(v->get<double>());
    if (std::string(key) == "top_p") req.mutable_sampling()->set_top_p(v->get<double>());
  }
  if (const Json* v = Member(j, "metadata")) {
    if (!v->is_object()) return InvalidField("metadata", "must be an object");
    out.metadata = *v;
  }
  if (const Json* u = Member(j, "user"); u != nullptr && !u->is_string()) {
    return InvalidField("user", "must be a string");
  }
  if (const Json* t = Member(j, "text")) {
    const Json* f = t->is_object() ? Member(*t, "format") : nullptr;
    if (f != nullptr && !(f->is_object() && f->value("type", "") == "text")) {
      return InvalidField("text.format", "only {\"type\":\"text\"} is supported");
    }
  }
  if (auto st = Tools(j, &req); !st.ok()) return st;
  return out;
}

ResponseView ViewOf(const ResponsesBody& body, std::string id, std::string model,
                    int64_t created_at) {
  ResponseView v;
  v.id = std::move(id);
  v.model = std::move(model);
  v.created_at = created_at;
  v.status = "in_progress";
  v.instructions = body.instructions.value_or("");
  v.previous_response_id = body.previous_response_id;
  v.store = body.store;
  v.truncation = body.truncation;
  if (body.request.sampling().has_max_tokens()) {
    v.max_output_tokens = body.request.sampling().max_tokens();
  }
  v.metadata = body.metadata;
  return v;
}

ResponseView ViewOf(const conversations::StoredResponse& stored) {
  ResponseView v;
  v.id = stored.id;
  v.model = stored.model;
  v.created_at = absl::ToUnixSeconds(stored.created);
  v.instructions = stored.instructions;
  if (!stored.turns.empty()) {
    v.result.content = stored.turns.back()->output.content;
    v.result.tool_calls = stored.turns.back()->output.tool_calls;
  }
  v.result.stats.prompt_tokens = stored.prompt_tokens;
  v.result.stats.completion_tokens = stored.completion_tokens;
  return v;
}

Json ResponseObject(const ResponseView& v) {
  Json output = Json::array();
  if (v.status != "in_progress" && v.status != "failed") {
    if (!v.result.content.empty() || v.result.tool_calls.empty()) {
      output.push_back(MessageItem(v.id, v.result.content, "completed"));
    }
    for (const auto& c : v.result.tool_calls) output.push_back(FunctionCallItem(c));
  }
  Json r = {{"id", v.id},
            {"object", "response"},
            {"created_at", v.created_at},
            {"status", v.status},
            {"model", v.model},
            {"output", std::move(output)},
            {"error", v.error},
            {"incomplete_details", nullptr},
            {"instructions", v.instructions.empty() ? Json() : Json(v.instructions)},
            {"previous_response_id",
             v.previous_response_id.empty() ? Json() : Json(v.previous_response_id)},
            {"store", v.store},
            {"truncation", v.truncation == conversations::Truncation::kAuto ? "auto" : "disabled"},
            {"max_output_tokens", v.max_output_tokens ? Json(*v.max_output_tokens) : Json()},
            {"parallel_tool_calls", true},
            {"tool_choice", "auto"},
            {"tools", Json::array()},
            {"text", {{"format", {{"type", "text"}}}}},
            {"metadata", v.metadata},
            {"usage", v.status == "in_progress" ? Json() : UsageOf(v.result.stats)}};
  if (v.status == "incomplete") r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  return r;
}

std::string ResponseJson(const ResponseView& v) { return Dump(ResponseObject(v)); }

std::string DeletedJson(const std::string& id) {
  return Dump({{"id", id}, {"object", "response.deleted"}, {"deleted", true}});
}

std::string ResponseStream::Event(const char* type, Json data) {
  data["type"] = type;
  data["sequence_number"] = sequence_++;
  return absl::StrCat("event: ", type, "\ndata: ", Dump(data), "\n\n");
}

std::string ResponseStream::Created() {
  Json r = ResponseObject(view_);
  std::string out = Event("response.created", {{"response", r}});
  out += Event("response.in_progress", {{"response", r}});  // numbered after created
  return out;
}

std::string ResponseStream::TextDelta(const std::string& t) {
  std::string out;
  if (!text_started_) {
    text_started_ = true;
    out += Event("response.output_item.added",
                 {{"output_index", 0}, {"item", MessageItem(view_.id, "", "in_progress")}});
    out +=
        Event("response.content_part.added",
              {{"item_id", MessageId(view_.id)},
               {"output_index", 0},
               {"content_index", 0},
               {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", Json::array()}}}});
  }
  text_ += t;
  out += Event(
      "response.output_text.delta",
      {{"item_id", MessageId(view_.id)}, {"output_index", 0}, {"content_index", 0}, {"delta", t}});
  return out;
}

std::string ResponseStream::Completed(const ResponseView& final_view) {
  ResponseView done = final_view;
  done.status = Incomplete(done.result) ? "incomplete" : "completed";
  std::string out;
  if (!text_started_ && (!done.result.content.empty() || done.result.tool_calls.empty())) {
    out += TextDelta(done.result.content);  // a text that never streamed (no deltas)
  }
  if (text_started_) {
    const std::string item = MessageId(view_.id);
    out += Event("response.output_text.done",
                 {{"item_id", item}, {"output_index", 0}, {"content_index", 0}, {"text", text_}});
    out += Event(
        "response.content_part.done",
        {{"item_id", item},
         {"output_index", 0},
         {"content_index", 0},
         {"part", {{"type", "output_text"}, {"text", text_}, {"annotations", Json::array()}}}});
    out += Event("response.output_item.done",
                 {{"output_index", 0}, {"item", MessageItem(view_.id, text_, "completed")}});
  }
  int index = text_started_ ? 1 : 0;
  for (const auto& c : done.result.tool_calls) {
    out += Event("response.output_item.added",
                 {{"output_index", index}, {"item", FunctionCallItem(c)}});
    out += Event("response.output_item.done",
                 {{"output_index", index}, {"item", FunctionCallItem(c)}});
    ++index;
  }
  const char* type = done.status == "incomplete" ? "response.incomplete" : "response.completed";
  out += Event(type, {{"response", ResponseObject(done)}});
  return out;
}

std::string ResponseStream::Failed(const std::string& code, const std::string& message) {
  ResponseView failed = view_;
  failed.status = "failed";
  failed.error = {{"code", code}, {"message", message}};
  return Event("response.failed", {{"response", ResponseObject(failed)}});
}

}  // namespace lmgate::http_ingress
