// The same model, messages, seed and max tokens give the same text over every interface.
#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::ParseSse;
using testing::WsClient;

class CrossInterface : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.settings.ttft_ms = 0;
    o.settings.tokens_per_second = 0;
    o.settings.load_ms_per_gb = 1;
    auto e = Emulator::Create(o);
    ASSERT_TRUE(e.ok());
    emulator_ = *std::move(e);
    http_ = std::make_unique<HttpClient>(emulator_->port());
    auto ws = WsClient::Connect(emulator_->port(), "llm");
    ASSERT_TRUE(ws.ok());
    ws_ = *std::move(ws);
    ASSERT_EQ(ws_->Auth()["success"], true);
  }

  // SDK predict / completeRawText with a query specifier; returns the concatenated fragments.
  std::string Sdk(const std::string& model, const json& history_or_prompt, int64_t seed,
                  int max_tokens, bool raw = false) {
    json fields = {{{"key", "llm.prediction.seed"}, {"value", {{"checked", true}, {"value", seed}}}},
                   {{"key", "llm.prediction.maxPredictedTokens"},
                    {"value", {{"checked", true}, {"value", max_tokens}}}}};
    // getOrLoad first, like SDK .model(): JIT-loads the model if needed.
    ws_->Channel("getOrLoad", ws_->next_id(),
                 {{"identifier", model}, {"loadConfigStack", {{"layers", json::array()}}}});
    json param = {{"modelSpecifier", {{"type", "query"}, {"query", {{"identifier", model}}}}},
                  {"predictionConfigStack",
                   {{"layers", {{{"layerName", "apiOverride"}, {"config", {{"fields", fields}}}}}}}}};
    param[raw ? "rawPrompt" : "history"] = history_or_prompt;
    std::string text, reasoning;
    for (const json& f : ws_->Channel(raw ? "completeRawText" : "predict", ws_->next_id(), param)) {
      if (f["type"] == "channelSend" && f["message"]["type"] == "fragment") {
        const json& frag = f["message"]["fragment"];
        if (frag["reasoningType"] == "none") text += frag["content"].get<std::string>();
      }
    }
    return text;
  }

  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<WsClient> ws_;
};

TEST_F(CrossInterface, ChatTextIsIdenticalOnAllFourInterfaces) {
  for (const std::string model : {"qwen/qwen3-4b", "qwen/qwen3-4b-thinking-2507"}) {
    const json openai_body = {
        {"model", model},
        {"messages", {{{"role", "system"}, {"content", "You are terse."}},
                      {{"role", "user"}, {"content", "Say hello."}}}},
        {"seed", 42},
        {"max_tokens", 30}};
    const std::string openai =
        http_->Post("/v1/chat/completions", openai_body).json()["choices"][0]["message"]["content"];
    ASSERT_FALSE(openai.empty());
    EXPECT_EQ(http_->Post("/api/v0/chat/completions", openai_body)
                  .json()["choices"][0]["message"]["content"],
              openai);
    json v1 = http_->Post("/api/v1/chat", {{"model", model},
                                           {"system_prompt", "You are terse."},
                                           {"input", "Say hello."},
                                           {"seed", 42},
                                           {"max_output_tokens", 30},
                                           {"store", false}})
                  .json();
    std::string v1_text;
    for (const json& item : v1["output"]) {
      if (item["type"] == "message") v1_text = item["content"];
    }
    EXPECT_EQ(v1_text, openai) << model;
    json history = {{"messages",
                     {{{"role", "system"}, {"content", {{{"type", "text"}, {"text", "You are terse."}}}}},
                      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Say hello."}}}}}}}};
    EXPECT_EQ(Sdk(model, history, 42, 30), openai) << model;
    // Streaming gives the same text as well.
    json stream_body = openai_body;
    stream_body["stream"] = true;
    std::string streamed;
    for (const json& ev : ParseSse(http_->Post("/v1/chat/completions", stream_body).body)) {
      if (ev["data"].is_object() && !ev["data"]["choices"].empty() &&
          ev["data"]["choices"][0]["delta"].contains("content")) {
        streamed += ev["data"]["choices"][0]["delta"]["content"].get<std::string>();
      }
    }
    EXPECT_EQ(streamed, openai) << model;
    // A different seed changes the text.
    json other = openai_body;
    other["seed"] = 43;
    EXPECT_NE(http_->Post("/v1/chat/completions", other).json()["choices"][0]["message"]["content"],
              openai);
  }
}

TEST_F(CrossInterface, RawCompletionIsIdenticalOverOpenAiV0AndSdk) {
  const json body = {{"model", "google/gemma-3-1b"}, {"prompt", "Once upon a time"},
                     {"seed", 5}, {"max_tokens", 12}};
  const std::string openai = http_->Post("/v1/completions", body).json()["choices"][0]["text"];
  ASSERT_FALSE(openai.empty());
  EXPECT_EQ(http_->Post("/api/v0/completions", body).json()["choices"][0]["text"], openai);
  EXPECT_EQ(Sdk("google/gemma-3-1b", "Once upon a time", 5, 12, /*raw=*/true), openai);
}

TEST_F(CrossInterface, EmbeddingsAreIdenticalOverHttpAndSdk) {
  const std::string key = "text-embedding-nomic-embed-text-v1.5";
  json http = http_->Post("/v1/embeddings", {{"model", key}, {"input", "hello there"}}).json();
  auto emb = WsClient::Connect(emulator_->port(), "embedding");
  ASSERT_TRUE(emb.ok());
  ASSERT_EQ((*emb)->Auth()["success"], true);
  json sdk = (*emb)->Rpc("embedString", {{"modelSpecifier", {{"type", "query"}, {"query", {{"identifier", key}}}}},
                                         {"inputString", "hello there"}});
  ASSERT_EQ(sdk["type"], "rpcResult") << sdk;
  const json& a = http["data"][0]["embedding"];
  const json& b = sdk["result"]["embedding"];
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(a[i].get<float>(), b[i].get<float>());
}

}  // namespace
}  // namespace lmgate::emulator
