#include "backends/sdk_ws/prediction.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lmgate::backends::sdk_ws {
namespace {

using Kind = GenerateEvent::Kind;

Json Fragment(const std::string& content, const std::string& reasoning = "none") {
  return Json{{"type", "fragment"},
              {"fragment", Json{{"content", content}, {"tokensCount", 1},
                                {"containsDrafted", false}, {"reasoningType", reasoning},
                                {"isStructural", false}}}};
}

Json Success(const std::string& stop = "eosFound") {
  return Json::parse(R"({"type":"success","stats":{"stopReason":")" + stop +
                     R"(","tokensPerSecond":57.5,"numGpuLayers":-1,"timeToFirstTokenSec":0.016,
                     "totalTimeSec":0.156,"promptTokensCount":12,"predictedTokensCount":9,
                     "totalTokensCount":21},"modelInfo":{},"loadModelConfig":{"fields":[]},
                     "predictionConfig":{"fields":[]}})");
}

TEST(PredictionStream, ContentReasoningProgressAndStats) {
  PredictionStream s;
  std::vector<GenerateEvent> ev;
  s.Consume(Json::parse(R"({"type":"promptProcessingProgress","progress":0.5,"details":{}})"), &ev);
  s.Consume(Fragment("<think>", "reasoningStartTag"), &ev);
  s.Consume(Fragment("hmm", "reasoning"), &ev);
  s.Consume(Fragment("</think>", "reasoningEndTag"), &ev);
  s.Consume(Fragment("Hello "), &ev);
  s.Consume(Fragment(""), &ev);
  s.Consume(Fragment("world"), &ev);
  s.Consume(Json::parse(R"({"type":"somethingNew"})"), &ev);
  EXPECT_FALSE(s.done());
  s.Consume(Success(), &ev);
  ASSERT_TRUE(s.done());
  s.Consume(Fragment("late"), &ev);  // ignored after success

  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, Kind::kPromptProgress);
  EXPECT_DOUBLE_EQ(ev[0].progress, 0.5);
  EXPECT_EQ(ev[1].kind, Kind::kReasoning);
  EXPECT_EQ(ev[1].text, "hmm");
  EXPECT_EQ(ev[2].kind, Kind::kContent);
  EXPECT_EQ(ev[3].text, "world");

  GenerateResult r = s.TakeResult();
  EXPECT_EQ(r.content, "Hello world");
  EXPECT_EQ(r.reasoning, "hmm");
  EXPECT_TRUE(r.stats.upstream_timings);
  EXPECT_EQ(r.stats.stop_reason, StopReason::kEos);
  EXPECT_EQ(r.stats.prompt_tokens, 12);
  EXPECT_EQ(r.stats.completion_tokens, 9);
  ASSERT_TRUE(r.stats.tokens_per_second.has_value());
  EXPECT_DOUBLE_EQ(*r.stats.tokens_per_second, 57.5);
  ASSERT_TRUE(r.stats.time_to_first_token.has_value());
  EXPECT_EQ(*r.stats.time_to_first_token, absl::Milliseconds(16));
}

TEST(PredictionStream, StreamedToolCalls) {
  PredictionStream s("p_");
  std::vector<GenerateEvent> ev;
  s.Consume(Json::parse(R"({"type":"toolCallGenerationStart","toolCallId":"123"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationNameReceived","name":"get_weather"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationArgumentFragmentGenerated","content":"{\"city\":"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationArgumentFragmentGenerated","content":"\"Oslo\"}"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationEnd","toolCallRequest":{"type":"function","id":"123","name":"get_weather","arguments":{"city":"Oslo"}}})"), &ev);
  // A second tool whose host sends no id and no argument fragments.
  s.Consume(Json::parse(R"({"type":"toolCallGenerationStart"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationEnd","toolCallRequest":{"type":"function","name":"ping"}})"), &ev);
  s.Consume(Success("toolCalls"), &ev);

  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, Kind::kToolCallDelta);
  EXPECT_EQ(ev[0].tool_index, 0);
  EXPECT_EQ(ev[0].tool_id, "123");
  EXPECT_EQ(ev[0].tool_name, "get_weather");
  EXPECT_EQ(ev[0].text, "");
  EXPECT_EQ(ev[1].text + ev[2].text, R"({"city":"Oslo"})");
  EXPECT_TRUE(ev[1].tool_id.empty());
  EXPECT_EQ(ev[3].tool_index, 1);
  EXPECT_EQ(ev[3].tool_id, "p_1");
  EXPECT_EQ(ev[3].tool_name, "ping");
  EXPECT_EQ(ev[3].text, "{}");

  GenerateResult r = s.TakeResult();
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id, "123");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(r.tool_calls[1].id, "p_1");
  EXPECT_EQ(r.stats.stop_reason, StopReason::kToolCalls);
}

TEST(PredictionStream, EndWithoutStartUsesTheHostsIdAndFailedToolsAreDropped) {
  PredictionStream s;
  std::vector<GenerateEvent> ev;
  s.Consume(Json::parse(R"({"type":"toolCallGenerationStart"})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationFailed","error":{"title":"bad"}})"), &ev);
  s.Consume(Json::parse(R"({"type":"toolCallGenerationEnd","toolCallRequest":{"type":"function","id":"h1","name":"f","arguments":{"x":1}}})"), &ev);
  s.Consume(Success(), &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].tool_index, 1);
  EXPECT_EQ(ev[0].tool_id, "h1");
  EXPECT_EQ(ev[0].text, R"({"x":1})");
  GenerateResult r = s.TakeResult();
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].id, "h1");
}

TEST(PredictionStream, UserStoppedAndGarbage) {
  PredictionStream s;
  std::vector<GenerateEvent> ev;
  for (const char* junk : {"null", "[]", R"({"type":"fragment"})", R"({"type":"fragment","fragment":5})",
                           R"({"type":"promptProcessingProgress","progress":"x"})",
                           R"({"type":"toolCallGenerationEnd","toolCallRequest":7})"}) {
    s.Consume(Json::parse(junk), &ev);
  }
  s.Consume(Json::parse(R"({"type":"success","stats":{"stopReason":"userStopped","tokensPerSecond":"fast"}})"), &ev);
  ASSERT_TRUE(s.done());
  GenerateResult r = s.TakeResult();
  EXPECT_EQ(r.stats.stop_reason, StopReason::kUserStopped);
  EXPECT_FALSE(r.stats.tokens_per_second.has_value());
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws
