// The OpenAI-compatible ingress through real sockets (libcurl) over the emulator: chat
// non-streamed and SSE, tools, json_schema, completions, models, embeddings, errors, request ids,
// cancellation on disconnect, a failure mid-stream, and single-flight loads under 50 streams.
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "tests/services/http_ingress/ingress_fixture.h"

namespace lmgate::testutil {
namespace {

using nlohmann::json;

class IngressTest : public IngressFixture {};

TEST_F(IngressTest, ChatNonStreamed) {
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, false),
                          {"x-request-id: my-id-1"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-request-id"], "my-id-1");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], "chatcmpl-my-id-1");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_FALSE(j["choices"][0]["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST_F(IngressTest, ChatStreamedWithUsageAndLoadingComments) {
  ASSERT_EQ(Stat("loads_started"), 0);  // the model is not loaded: the stream shows the load
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, true));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_FALSE(r.headers["x-request-id"].empty());  // generated
  EXPECT_TRUE(absl::StrContains(r.body, ": loading ")) << r.body;
  auto data = SseData(r.body);
  ASSERT_GE(data.size(), 4u);
  EXPECT_EQ(data.back(), "[DONE]");
  std::string joined;
  bool saw_role = false, saw_finish = false, saw_usage = false;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    json c = json::parse(data[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"].empty()) {
      saw_usage = true;
      EXPECT_EQ(c["usage"]["completion_tokens"], 8);
      continue;
    }
    const json& d = c["choices"][0]["delta"];
    if (d.contains("role")) saw_role = true;
    if (d.contains("content")) joined += d["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) saw_finish = true;
  }
  EXPECT_TRUE(saw_role && saw_finish && saw_usage) << r.body;
  EXPECT_FALSE(joined.empty());
}

TEST_F(IngressTest, PathsWithoutV1AndCompletions) {
  json body = {{"model", kModel}, {"prompt", "Once upon a time"}, {"max_tokens", 5}};
  HttpResult r = HttpPost(port(), "/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_FALSE(j["choices"][0]["text"].get<std::string>().empty());
  body["stream"] = true;
  r = HttpPost(port(), "/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  auto data = SseData(r.body);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.back(), "[DONE]");
  EXPECT_EQ(json::parse(data[0])["object"], "text_completion");
}

TEST_F(IngressTest, ToolsRoundTrip) {
  json tools = json::array({{{"type", "function"},
                             {"function",
                              {{"name", "get_weather"},
                               {"description", "Weather of a city"},
                               {"parameters",
                                {{"type", "object"},
                                 {"properties", {{"city", {{"type", "string"}}}}},
                                 {"required", {"city"}}}}}}}});
  json body = {{"model", kModel},
               {"messages", {{{"role", "user"}, {"content", "Use get_weather for Paris"}}}},
               {"tools", tools}};
  HttpResult r = HttpPost(port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << r.body;
  const json call = j["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_TRUE(json::parse(call["function"]["arguments"].get<std::string>()).contains("city"));
  // The result goes back; the model answers in text.
  body["messages"].push_back(j["choices"][0]["message"]);
  body["messages"].push_back(
      {{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "{\"temp_c\":21}"}});
  r = HttpPost(port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["choices"][0]["finish_reason"], "stop") << r.body;
}

TEST_F(IngressTest, JsonSchemaOutput) {
  json body = {{"model", kModel},
               {"messages", {{{"role", "user"}, {"content", "A person"}}}},
               {"response_format",
                {{"type", "json_schema"},
                 {"json_schema",
                  {{"name", "person"},
                   {"schema",
                    {{"type", "object"},
                     {"properties", {{"name", {{"type", "string"}}}}},
                     {"required", {"name"}}}}}}}}};
  HttpResult r = HttpPost(port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json content = json::parse(
      json::parse(r.body)["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(content["name"].is_string()) << r.body;
}

TEST_F(IngressTest, ModelsListAndRetrieve) {
  HttpResult r = HttpCall(port(), "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "list");
  bool found = false;
  for (const auto& m : j["data"]) found |= m["id"] == kModel;
  EXPECT_TRUE(found) << r.body;
  for (const char* path : {"/v1/models/qwen/qwen3-4b", "/v1/models/qwen%2Fqwen3-4b",
                           "/models/qwen/qwen3-4b"}) {
    r = HttpCall(port(), path);
    ASSERT_EQ(r.status, 200) << path << " " << r.body;
    EXPECT_EQ(json::parse(r.body)["id"], kModel);
    EXPECT_EQ(json::parse(r.body)["lmgate"]["state"], "NOT_LOADED");
  }
  r = HttpCall(port(), "/v1/models/nobody/nothing");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(ErrorOf(r)["code"], "model_not_found");
}

TEST_F(IngressTest, EmbeddingsFloatAndBase64) {
  json body = {{"model", "text-embedding-nomic-embed-text-v1.5"}, {"input", {"a cat", "a dog"}}};
  HttpResult f = HttpPost(port(), "/v1/embeddings", body.dump());
  ASSERT_EQ(f.status, 200) << f.body;
  body["encoding_format"] = "base64";
  HttpResult b = HttpPost(port(), "/v1/embeddings", body.dump());
  ASSERT_EQ(b.status, 200) << b.body;
  json jf = json::parse(f.body), jb = json::parse(b.body);
  ASSERT_EQ(jf["data"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    std::string raw;
    ASSERT_TRUE(absl::Base64Unescape(jb["data"][i]["embedding"].get<std::string>(), &raw));
    const auto floats = jf["data"][i]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(raw.size(), floats.size() * sizeof(float));
    std::vector<float> decoded(floats.size());
    std::memcpy(decoded.data(), raw.data(), raw.size());
    EXPECT_EQ(decoded, floats);
  }
  body = {{"model", "text-embedding-nomic-embed-text-v1.5"}, {"input", "one string"}};
  EXPECT_EQ(HttpPost(port(), "/embeddings", body.dump()).status, 200);
}

TEST_F(IngressTest, BadInputIs400NamingTheField) {
  struct Case {
    std::string body;
    std::string param;
  } cases[] = {
      {R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"foo":1})", "foo"},
      {R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"logit_bias":{"1":5}})",
       "logit_bias"},
      {R"({"model":"qwen/qwen3-4b","messages":[]})", "messages"},
      {R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
       "temperature"},
      {R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":5}]})",
       "messages[0].content"},
      {"not json", ""},
      {std::string(200, '[') + std::string(200, ']'), ""},
  };
  for (const auto& c : cases) {
    HttpResult r = HttpPost(port(), "/v1/chat/completions", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " → " << r.body;
    json e = ErrorOf(r);
    ASSERT_TRUE(e.is_object()) << r.body;
    EXPECT_EQ(e["type"], "invalid_request_error");
    EXPECT_FALSE(e["message"].get<std::string>().empty());
    if (!c.param.empty()) {
      EXPECT_EQ(e["param"], c.param) << r.body;
    }
  }
  // A sampling range convert.cc checks, in OpenAI's name.
  HttpResult r = HttpPost(
      port(), "/v1/chat/completions",
      R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"top_p":7})");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(absl::StartsWith(ErrorOf(r)["message"].get<std::string>(), "top_p")) << r.body;
}

TEST_F(IngressTest, UnknownModelRouteAndMethod) {
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody("nobody/nothing", true));
  EXPECT_EQ(r.status, 404) << r.body;  // refused before the stream starts: a real status
  EXPECT_EQ(ErrorOf(r)["code"], "model_not_found");
  r = HttpCall(port(), "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  r = HttpCall(port(), "/v1/chat/completions");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
}

TEST_F(IngressTest, ClientDisconnectCancelsTheUpstreamPrediction) {
  SetTokens(20, 10000);  // ~8 minutes of tokens: only a cancel ends it
  HttpCallOptions o;
  o.method = "POST";
  o.body = ChatBody(kModel, true, 10000);
  o.headers = {"Content-Type: application/json"};
  o.on_data = [](const std::string& so_far) {
    return !absl::StrContains(so_far, "\"content\"");  // go away after the first token
  };
  HttpResult r = HttpCall(port(), "/v1/chat/completions", o);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.curl_error.empty());  // aborted by the callback
  EXPECT_TRUE(Quiescent()) << "predictions_active stays " << Stat("predictions_active");
}

TEST_F(IngressTest, StreamThatFailsAfterStartingEndsWithAnErrorEvent) {
  // Loaded first, so the failure is the prediction's, after tokens went out.
  ASSERT_EQ(HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, false)).status, 200);
  emulator::Faults f;
  f.drop_after_fragments = 3;
  emu_->SetFaults(f);
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, true, 40));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "event: error\ndata: {\"error\"")) << r.body;
  EXPECT_FALSE(absl::StrContains(r.body, "[DONE]")) << r.body;
}

TEST_F(IngressTest, FiftyConcurrentStreamsForAnUnloadedModelLoadItOnce) {
  constexpr int kCalls = 50;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&] {
      HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody("google/gemma-3-1b", true, 4));
      if (r.status == 200 && !SseData(r.body).empty() && SseData(r.body).back() == "[DONE]") {
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), kCalls);
  EXPECT_EQ(Stat("loads_started"), 1);
}

}  // namespace
}  // namespace lmgate::testutil
