// OpenAI-compatible, REST v0/v1 and discovery endpoints over real HTTP (§2–§4).
#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::HttpResult;
using testing::ParseSse;
using testing::WaitFor;

std::unique_ptr<Emulator> Start(Options o = {}) {
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;
  o.settings.load_ms_per_gb = 4;
  auto e = Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

json ChatBody(const std::string& model, bool stream = false) {
  return {{"model", model},
          {"messages", {{{"role", "system"}, {"content", "You are terse."}},
                        {{"role", "user"}, {"content", "Say hello."}}}},
          {"stream", stream}};
}

TEST(HttpApi, DiscoveryProbesAndUnknownPaths) {
  auto e = Start();
  HttpClient c(e->port());
  HttpResult r = c.Get("/lmstudio-greeting");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json(), json({{"lmstudio", true}}));
  json status = c.Get("/lms-status").json();
  EXPECT_EQ(status["package"], "lmstudio-emulator");
  EXPECT_TRUE(status["version"].is_string());
  r = c.Post("/chat/completions", json::object());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json(), json({{"error", "Unexpected endpoint or method. (POST /chat/completions)"}}));
  EXPECT_EQ(e->Stats()["requests_by_interface"]["cli_status"], 2);
}

TEST(HttpApi, OpenAiChatNonStreamingJitAndKeepAlive) {
  auto e = Start();
  HttpClient c(e->port());
  HttpResult r = c.Post("/v1/chat/completions", ChatBody("qwen/qwen3-4b"));
  ASSERT_EQ(r.status, 200) << r.body;
  json b = r.json();
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["model"], "qwen/qwen3-4b");
  EXPECT_EQ(b["system_fingerprint"], "qwen/qwen3-4b");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b["choices"][0]["message"]["role"], "assistant");
  EXPECT_FALSE(b["choices"][0]["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(b["choices"][0]["message"]["tool_calls"], json::array());
  EXPECT_GT(b["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(b["usage"]["total_tokens"].get<int>(),
            b["usage"]["prompt_tokens"].get<int>() + b["usage"]["completion_tokens"].get<int>());
  EXPECT_TRUE(b.contains("stats"));
  // Same request, same connection, same text.
  HttpResult again = c.Post("/v1/chat/completions", ChatBody("qwen/qwen3-4b"));
  EXPECT_EQ(again.new_connections, 0);
  EXPECT_EQ(again.json()["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
  json stats = e->Stats();
  EXPECT_EQ(stats["loads_started"], 1);
  EXPECT_EQ(stats["loaded_instances"][0]["jit"], true);
  EXPECT_EQ(stats["requests_by_interface"]["openai"], 2);
}

TEST(HttpApi, OpenAiStreamingChunksUsageAndDone) {
  auto e = Start();
  HttpClient c(e->port());
  json body = ChatBody("google/gemma-3-1b", true);
  body["max_tokens"] = 5;
  body["stream_options"] = {{"include_usage", true}};
  HttpResult r = c.Post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200);
  std::vector<json> events = ParseSse(r.body);
  ASSERT_GE(events.size(), 8u);
  EXPECT_EQ(events.back()["data"], "[DONE]");
  EXPECT_EQ(events[0]["data"]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[0]["data"]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 0; i + 3 < events.size(); ++i) {
    text += events[i]["data"]["choices"][0]["delta"]["content"].get<std::string>();
  }
  const json finish = events[events.size() - 3]["data"];
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  const json usage = events[events.size() - 2]["data"];
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 5);
  body["stream"] = false;
  EXPECT_EQ(c.Post("/v1/chat/completions", body).json()["choices"][0]["message"]["content"], text);
}

TEST(HttpApi, ToolCallsAndStructuredOutput) {
  auto e = Start();
  HttpClient c(e->port());
  json body = ChatBody("qwen/qwen3-4b");
  body["messages"][1]["content"] = "What is the weather in Paris?";
  body["tools"] = json::parse(R"([{"type":"function","function":{"name":"get_weather",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])");
  json b = c.Post("/v1/chat/completions", body).json();
  EXPECT_EQ(b["choices"][0]["finish_reason"], "tool_calls");
  const json call = b["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(call["id"].get<std::string>().find_first_not_of("0123456789"), std::string::npos);
  EXPECT_TRUE(json::parse(call["function"]["arguments"].get<std::string>())["city"].is_string());

  body["stream"] = true;
  std::vector<json> events = ParseSse(c.Post("/v1/chat/completions", body).body);
  EXPECT_EQ(events[0]["data"]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "get_weather");
  std::string args;
  for (const json& ev : events) {
    if (ev["data"].is_object() && !ev["data"]["choices"].empty() &&
        ev["data"]["choices"][0]["delta"].contains("tool_calls")) {
      args += ev["data"]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].get<std::string>();
    }
  }
  EXPECT_EQ(args, call["function"]["arguments"]);

  json structured = ChatBody("qwen/qwen3-4b");
  structured["response_format"] = json::parse(R"({"type":"json_schema","json_schema":{"name":"p",
      "schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},
      "required":["name","age"]}}})");
  json s = c.Post("/v1/chat/completions", structured).json();
  json parsed = json::parse(s["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << s;
  EXPECT_TRUE(parsed["name"].is_string());
  EXPECT_TRUE(parsed["age"].is_number_integer());
}

TEST(HttpApi, ReasoningModelSplitsReasoningContent) {
  auto e = Start();
  HttpClient c(e->port());
  json b = c.Post("/v1/chat/completions", ChatBody("qwen/qwen3-4b-thinking-2507")).json();
  const json msg = b["choices"][0]["message"];
  EXPECT_FALSE(msg["reasoning_content"].get<std::string>().empty());
  EXPECT_EQ(msg["content"].get<std::string>().find("<think>"), std::string::npos);
  EXPECT_GT(b["usage"]["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);
}

TEST(HttpApi, CompletionsAndEmbeddings) {
  auto e = Start();
  HttpClient c(e->port());
  json comp = c.Post("/v1/completions", {{"model", "google/gemma-3-1b"}, {"prompt", "Once upon a time"},
                                         {"max_tokens", 4}, {"seed", 3}}).json();
  EXPECT_EQ(comp["object"], "text_completion");
  EXPECT_EQ(comp["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(comp["usage"]["completion_tokens"], 4);
  json one = c.Post("/v1/embeddings", {{"model", "text-embedding-nomic-embed-text-v1.5"}, {"input", "hi"}}).json();
  EXPECT_EQ(one["object"], "list");
  EXPECT_EQ(one["data"][0]["embedding"].size(), 768u);
  json many = c.Post("/v1/embeddings", {{"model", "text-embedding-bge-small-en-v1.5"},
                                        {"input", {"a", "b", "c"}}}).json();
  ASSERT_EQ(many["data"].size(), 3u);
  EXPECT_EQ(many["data"][2]["index"], 2);
  EXPECT_EQ(many["data"][0]["embedding"].size(), 384u);
  EXPECT_EQ(e->Stats()["embeddings"], 4);
}

TEST(HttpApi, ModelErrorsAndJitOff) {
  auto e = Start();
  HttpClient c(e->port());
  HttpResult r = c.Post("/v1/chat/completions", ChatBody("o4-mini"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "model_not_found");
  EXPECT_EQ(r.json()["error"]["param"], "model");
  EXPECT_EQ(r.json()["error"]["type"], "invalid_request_error");
  EXPECT_EQ(c.Get("/v1/models").json()["data"].size(), 5u);

  ASSERT_TRUE(e->ApplySettings({{"jit_enabled", false}}).ok());
  r = c.Post("/v1/chat/completions", ChatBody("qwen/qwen3-4b"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("No models loaded"), std::string::npos);
  EXPECT_EQ(c.Get("/v1/models").json()["data"], json::array());
  ASSERT_TRUE(e->Load("google/gemma-3-1b", "gem").ok());
  EXPECT_EQ(c.Get("/v1/models").json()["data"][0]["id"], "gem");
  EXPECT_EQ(c.Post("/v1/chat/completions", ChatBody("qwen/qwen3-4b")).json()["error"]["code"],
            "model_not_found");
  EXPECT_EQ(c.Post("/v1/chat/completions", ChatBody("gem")).status, 200);
  EXPECT_EQ(c.Post("/v1/chat/completions", ChatBody("google/gemma-3-1b")).status, 200);
  EXPECT_EQ(c.Post("/v1/chat/completions", "not json").status, 400);
  HttpResult typed = c.Post("/v1/chat/completions", {{"model", 5}, {"messages", "x"}});
  EXPECT_EQ(typed.status, 400);
  EXPECT_EQ(c.Post("/api/v1/chat", {{"model", {1, 2}}, {"input", "x"}}).status, 400);
  EXPECT_EQ(c.Post("/v1/embeddings", {{"model", true}, {"input", "x"}}).status, 400);
  EXPECT_EQ(c.Get("/lmstudio-greeting").status, 200);  // still serving
}

TEST(HttpApi, RestV0ModelsAndChat) {
  auto e = Start();
  HttpClient c(e->port());
  ASSERT_TRUE(e->Load("qwen/qwen3-4b", std::nullopt, std::nullopt, 8192).ok());
  json list = c.Get("/api/v0/models").json();
  EXPECT_EQ(list["object"], "list");
  json m = c.Get("/api/v0/models/qwen/qwen3-4b").json();
  EXPECT_EQ(m["state"], "loaded");
  EXPECT_EQ(m["loaded_context_length"], 8192);
  EXPECT_EQ(m["capabilities"], json({"tool_use"}));
  EXPECT_EQ(m["compatibility_type"], "gguf");
  EXPECT_EQ(c.Get("/api/v0/models/google/gemma-3-1b").json()["state"], "not-loaded");
  EXPECT_EQ(c.Get("/api/v0/models/text-embedding-bge-small-en-v1.5").json()["type"], "embeddings");
  EXPECT_EQ(c.Get("/api/v0/models/nope").status, 404);

  json b = c.Post("/api/v0/chat/completions", ChatBody("qwen/qwen3-4b")).json();
  EXPECT_EQ(b["stats"]["stop_reason"], "eosFound");
  EXPECT_TRUE(b["stats"].contains("tokens_per_second"));
  EXPECT_EQ(b["model_info"]["context_length"], 8192);
  EXPECT_EQ(b["runtime"]["supported_formats"], json({"gguf"}));
  std::vector<json> events = ParseSse(c.Post("/api/v0/chat/completions", ChatBody("qwen/qwen3-4b", true)).body);
  const json last = events[events.size() - 2]["data"];
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(last.contains("stats"));
  EXPECT_TRUE(last.contains("usage"));
  EXPECT_EQ(e->Stats()["requests_by_interface"]["rest_v0"], 7);
}

TEST(HttpApi, RestV1ModelsLoadUnloadChat) {
  auto e = Start();
  HttpClient c(e->port());
  json load = c.Post("/api/v1/models/load", {{"model", "google/gemma-3-1b"}, {"context_length", 4096},
                                             {"echo_load_config", true}}).json();
  EXPECT_EQ(load["status"], "loaded");
  EXPECT_EQ(load["instance_id"], "google/gemma-3-1b");
  EXPECT_EQ(load["load_config"]["context_length"], 4096);
  json second = c.Post("/api/v1/models/load", {{"model", "google/gemma-3-1b"}}).json();
  EXPECT_EQ(second["instance_id"], "google/gemma-3-1b:2");
  json models = c.Get("/api/v1/models").json()["models"];
  json gemma;
  for (const json& m : models) {
    if (m["key"] == "google/gemma-3-1b") gemma = m;
  }
  ASSERT_EQ(gemma["loaded_instances"].size(), 2u);
  EXPECT_EQ(gemma["loaded_instances"][0]["config"]["context_length"], 4096);
  EXPECT_EQ(gemma["quantization"]["bits_per_weight"], 4);
  EXPECT_EQ(c.Post("/api/v1/models/unload", {{"instance_id", "google/gemma-3-1b:2"}}).json()["instance_id"],
            "google/gemma-3-1b:2");
  HttpResult missing = c.Post("/api/v1/models/unload", {{"instance_id", "nope"}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"]["type"], "model_not_found");
  EXPECT_EQ(c.Post("/api/v1/models/load", {{"model", "nope"}}).status, 404);

  json chat = c.Post("/api/v1/chat", {{"model", "google/gemma-3-1b"}, {"input", "Say hello."},
                                      {"system_prompt", "You are terse."}}).json();
  EXPECT_EQ(chat["model_instance_id"], "google/gemma-3-1b");
  EXPECT_EQ(chat["output"][0]["type"], "message");
  EXPECT_GT(chat["stats"]["total_output_tokens"].get<int>(), 0);
  ASSERT_TRUE(chat["response_id"].is_string());
  json follow = c.Post("/api/v1/chat", {{"model", "google/gemma-3-1b"}, {"input", "More."},
                                        {"previous_response_id", chat["response_id"]}}).json();
  EXPECT_GT(follow["stats"]["input_tokens"].get<int>(), chat["stats"]["input_tokens"].get<int>());

  // Streaming with a JIT load: chat.start first, model_load.*, chat.end last.
  std::vector<json> events = ParseSse(c.Post("/api/v1/chat", {{"model", "qwen/qwen3-4b-thinking-2507"},
                                                              {"input", "Why?"}, {"stream", true}}).body);
  std::vector<std::string> names;
  for (const json& ev : events) {
    names.push_back(ev["event"]);
    EXPECT_EQ(ev["data"]["type"], ev["event"]);
  }
  ASSERT_GE(names.size(), 10u);
  EXPECT_EQ(names.front(), "chat.start");
  EXPECT_EQ(names[1], "model_load.start");
  EXPECT_EQ(names.back(), "chat.end");
  for (const char* want : {"model_load.progress", "model_load.end", "prompt_processing.start",
                           "reasoning.start", "reasoning.delta", "reasoning.end", "message.start",
                           "message.delta", "message.end"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  const json result = events.back()["data"]["result"];
  EXPECT_EQ(result["output"][0]["type"], "reasoning");
  EXPECT_EQ(result["output"][1]["type"], "message");
  EXPECT_TRUE(result["stats"].contains("model_load_time_seconds"));
}

TEST(HttpApi, ApiTokenRequired) {
  Options o;
  o.api_token = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";
  auto e = Start(o);
  HttpClient c(e->port());
  HttpResult r = c.Get("/v1/models");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.json()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(r.json()["error"]["type"], "invalid_request");
  EXPECT_EQ(c.Get("/api/v1/models", "sk-lm-AbCd1234:wrongwrongwrongwrong").status, 401);
  EXPECT_EQ(c.Get("/v1/models", o.api_token).status, 200);
  EXPECT_EQ(c.Get("/lmstudio-greeting").status, 200);  // discovery stays open
  EXPECT_FALSE(Emulator::Create([] {
                 Options bad;
                 bad.api_token = "sk-lm-short:x";
                 return bad;
               }()).ok());
}

TEST(HttpApi, ClientDisconnectCancelsStreamingPrediction) {
  auto e = Start();
  ASSERT_TRUE(e->ApplySettings({{"tokens_per_second", 100}, {"max_response_tokens", 400}, {"min_response_tokens", 300}}).ok());
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  HttpClient c(e->port());
  int chunks = 0;
  c.PostStream("/v1/chat/completions", ChatBody("google/gemma-3-1b", true),
               [&](const std::string&) { return ++chunks < 3; });
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }, absl::Seconds(2)));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);
}

TEST(HttpApi, ClientDisconnectCancelsNonStreamingPrediction) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  e->StallNextPrediction(0, -1);  // never answers until cancelled
  std::thread client([&] {
    HttpClient c(e->port());
    c.PostStream("/v1/chat/completions", ChatBody("google/gemma-3-1b"),
                 [](const std::string&) { return true; });
  });
  ASSERT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 1; }));
  e->RefuseConnections(0, /*drop_existing_connections=*/true);  // the client side goes away
  client.join();
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);
}

TEST(HttpApi, ParallelSlotsQueueBeyondFour) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  ASSERT_TRUE(e->ApplySettings({{"ttft_ms", 60000}}).ok());  // every prediction holds its slot until cancelled
  std::vector<std::thread> clients;
  for (int i = 0; i < 5; ++i) {
    clients.emplace_back([&] {
      HttpClient c(e->port());
      c.Post("/v1/chat/completions", ChatBody("google/gemma-3-1b"));
    });
  }
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_queued"] == 1; }));
  EXPECT_EQ(e->Stats()["loaded_instances"][0]["active"], 4);
  EXPECT_EQ(e->Stats()["predictions_active"], 5);
  e->RefuseConnections(0, /*drop_existing_connections=*/true);  // all five clients go away
  for (auto& t : clients) t.join();
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 5);
}

TEST(HttpApi, RequestTtlAndTtlExpiry) {
  auto e = Start();
  HttpClient c(e->port());
  json body = ChatBody("google/gemma-3-1b");
  body["ttl"] = 0.05;  // seconds
  ASSERT_EQ(c.Post("/v1/chat/completions", body).status, 200);
  EXPECT_EQ(e->Stats()["loaded_instances"][0]["ttlMs"], 50);
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["loaded_instances"].empty(); }));
  EXPECT_EQ(e->Stats()["ttl_unloads"], 1);
}

}  // namespace
}  // namespace lmgate::emulator
