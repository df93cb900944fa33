// The emulator fed deeply nested JSON on each interface answers an error and stays up (nlohmann
// copies and dumps values recursively: a 100,000-level body used to overflow its stack).
#include <string>

#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::HttpResult;
using testing::WsClient;

constexpr int kLevels = 100000;

// {"a":{"a":...1...}} nested `levels` deep, as text (building it with nlohmann would recurse).
std::string Deep(int levels) {
  std::string s;
  s.reserve(levels * 6 + 1);
  for (int i = 0; i < levels; ++i) s += R"({"a":)";
  s += "1";
  s.append(levels, '}');
  return s;
}

std::unique_ptr<Emulator> Start() {
  Options o;
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;
  auto e = Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

TEST(DeepJson, EveryHttpInterfaceAnswers400AndStaysUp) {
  auto e = Start();
  HttpClient c(e->port());
  const std::string deep = Deep(kLevels);
  const std::string chat = R"({"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"hi"}],)";
  struct Case {
    const char* path;
    std::string body;
  };
  const Case cases[] = {
      {"/v1/chat/completions", chat + R"("tools":)" + deep + "}"},
      {"/v1/chat/completions", chat + R"("response_format":)" + deep + "}"},
      {"/v1/completions", R"({"model":"qwen/qwen3-4b","prompt":"hi","stop":)" + deep + "}"},
      {"/v1/embeddings", R"({"model":"text-embedding-nomic-embed-text-v1.5","input":)" + deep + "}"},
      {"/api/v0/chat/completions", chat + R"("tools":)" + deep + "}"},
      {"/api/v1/models/load", R"({"model":"qwen/qwen3-4b","config":)" + deep + "}"},
      {"/api/v1/chat", chat + R"("tools":)" + deep + "}"},
      {"/__emulator/faults", deep},
  };
  for (const Case& k : cases) {
    HttpResult r = c.PostText(k.path, k.body);
    EXPECT_EQ(r.status, 400) << k.path << ": " << r.body.substr(0, 200);
    EXPECT_NE(r.body.find("nested deeper than"), std::string::npos) << k.path << ": " << r.body;
    EXPECT_EQ(c.Get("/v1/models").status, 200) << "after " << k.path;
  }
  EXPECT_EQ(e->Stats()["predictions_started"], 0);
  EXPECT_EQ(e->Stats()["loads_started"], 0);
}

TEST(DeepJson, TheSdkWebSocketAnswersAWarningAndStaysUp) {
  auto e = Start();
  auto ws = WsClient::Connect(e->port(), "llm");
  ASSERT_TRUE(ws.ok()) << ws.status();
  ASSERT_EQ((*ws)->Auth()["success"], true);
  const std::string deep = Deep(kLevels);
  (*ws)->SendText(R"({"type":"rpcCall","endpoint":"listLoaded","callId":1,"parameter":)" + deep +
                  "}");
  std::optional<json> warning = (*ws)->Next();
  ASSERT_TRUE(warning.has_value());
  EXPECT_EQ((*warning)["type"], "communicationWarning");
  EXPECT_NE((*warning)["warning"].get<std::string>().find("nested deeper than"), std::string::npos)
      << *warning;
  (*ws)->SendText(R"({"type":"channelCreate","endpoint":"predict","channelId":2,)"
                  R"("creationParameter":)" + deep + "}");
  warning = (*ws)->Next();
  ASSERT_TRUE(warning.has_value());
  EXPECT_EQ((*warning)["type"], "communicationWarning");
  // The same socket still answers.
  json listed = (*ws)->Rpc("listLoaded");
  EXPECT_EQ(listed["type"], "rpcResult") << listed;
  EXPECT_EQ(e->Stats()["predictions_started"], 0);
}

}  // namespace
}  // namespace lmgate::emulator
