#include "backends/http/openai_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/http/json.h"

namespace lmgate::backends::http {
namespace {

using ::testing::HasSubstr;
using Kind = GenerateEvent::Kind;

Json BodyOf(const GenerateRequest& r, bool stream = true) {
  auto body = BuildGenerateBody(r, stream);
  EXPECT_TRUE(body.ok()) << body.status();
  return Json::parse(body.value_or("{}"));
}

TEST(BuildGenerateBodyTest, ChatMapsEveryField) {
  GenerateRequest r;
  r.model = "qwen/qwen3-4b:2";
  r.messages = {{"system", "Be terse."},
                {"user", "Weather?"},
                {"assistant", "", {{"call_1", "get_weather", R"({"city":"Paris"})"}}},
                {"tool", "sunny", {}, "call_1", "get_weather"}};
  r.sampling.temperature = 0.25;
  r.sampling.top_p = 0.9;
  r.sampling.top_k = 40;
  r.sampling.min_p = 0.05;
  r.sampling.max_tokens = 64;
  r.sampling.stop = {"\n\n", "END"};
  r.sampling.presence_penalty = 0.5;
  r.sampling.frequency_penalty = 0.75;
  r.sampling.repeat_penalty = 1.1;
  r.sampling.seed = 1234567890123;
  r.tools = {{"get_weather", "Weather by city",
              R"({"type":"object","properties":{"city":{"type":"string"}}})"},
             {"noop", "", ""}};
  r.tool_choice = ToolChoice::kRequired;
  r.json_schema = R"({"type":"object","properties":{"a":{"type":"integer"}}})";
  r.schema_name = "answer";
  Json b = BodyOf(r);
  EXPECT_EQ(b["model"], "qwen/qwen3-4b:2");
  ASSERT_EQ(b["messages"].size(), 4u);
  EXPECT_EQ(b["messages"][0], Json({{"role", "system"}, {"content", "Be terse."}}));
  EXPECT_TRUE(b["messages"][2]["content"].is_null());
  EXPECT_EQ(b["messages"][2]["tool_calls"][0],
            Json::parse(R"({"id":"call_1","type":"function","function":{"name":"get_weather",
                            "arguments":"{\"city\":\"Paris\"}"}})"));
  EXPECT_EQ(b["messages"][3]["tool_call_id"], "call_1");
  EXPECT_EQ(b["messages"][3]["name"], "get_weather");
  EXPECT_EQ(b["temperature"], 0.25);
  EXPECT_EQ(b["top_p"], 0.9);
  EXPECT_EQ(b["top_k"], 40);
  EXPECT_EQ(b["min_p"], 0.05);
  EXPECT_EQ(b["max_tokens"], 64);
  EXPECT_EQ(b["stop"], Json({"\n\n", "END"}));
  EXPECT_EQ(b["presence_penalty"], 0.5);
  EXPECT_EQ(b["frequency_penalty"], 0.75);
  EXPECT_EQ(b["repeat_penalty"], 1.1);
  EXPECT_EQ(b["seed"], 1234567890123);
  EXPECT_EQ(b["tools"][0]["type"], "function");
  EXPECT_EQ(b["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(b["tools"][0]["function"]["description"], "Weather by city");
  EXPECT_EQ(b["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], "string");
  EXPECT_EQ(b["tools"][1]["function"]["parameters"]["type"], "object");
  EXPECT_EQ(b["tool_choice"], "required");
  EXPECT_EQ(b["response_format"]["type"], "json_schema");
  EXPECT_EQ(b["response_format"]["json_schema"]["name"], "answer");
  EXPECT_EQ(b["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"], "integer");
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["stream_options"]["include_usage"], true);
}

TEST(BuildGenerateBodyTest, MinimalChatSendsNoDefaults) {
  GenerateRequest r;
  r.model = "m";
  r.messages = {{"user", "hi"}};
  Json b = BodyOf(r, /*stream=*/false);
  EXPECT_EQ(b, Json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
                               "stream":false})"));
  r.tool_choice = ToolChoice::kNone;
  EXPECT_EQ(BodyOf(r)["tool_choice"], "none");
  r.tool_choice = ToolChoice::kAuto;
  EXPECT_EQ(BodyOf(r)["tool_choice"], "auto");
}

TEST(BuildGenerateBodyTest, TextCompletion) {
  GenerateRequest r;
  r.model = "m";
  r.chat = false;
  r.prompt = "Once upon";
  r.sampling.max_tokens = 5;
  Json b = BodyOf(r);
  EXPECT_EQ(b["prompt"], "Once upon");
  EXPECT_FALSE(b.contains("messages"));
  EXPECT_EQ(b["max_tokens"], 5);
}

TEST(BuildGenerateBodyTest, RejectsWhatCannotBeSent) {
  GenerateRequest r;
  EXPECT_EQ(BuildGenerateBody(r, true).status().code(), absl::StatusCode::kInvalidArgument);
  r.model = "m";
  r.tools = {{"t", "", "[1,2]"}};
  EXPECT_THAT(BuildGenerateBody(r, true).status().message(), HasSubstr("tool \"t\""));
  r.tools = {};
  r.json_schema = "{not json";
  EXPECT_EQ(BuildGenerateBody(r, true).status().code(), absl::StatusCode::kInvalidArgument);
  r.json_schema = "";
  r.chat = false;
  r.tools = {{"t", "", ""}};
  EXPECT_EQ(BuildGenerateBody(r, true).status().code(), absl::StatusCode::kInvalidArgument);
}

std::vector<GenerateEvent> Feed(CompletionAccumulator& acc, const std::vector<std::string>& chunks,
                                absl::Status* last = nullptr) {
  std::vector<GenerateEvent> events;
  for (const std::string& c : chunks) {
    absl::Status s = acc.AddChunk(c, &events);
    if (last) *last = s;
    if (!s.ok()) break;
  }
  return events;
}

TEST(CompletionAccumulatorTest, ChatStreamWithReasoningToolCallsAndUsage) {
  CompletionAccumulator acc(/*use_upstream_stats=*/false, "http://h:1", "/v1/chat/completions");
  std::vector<GenerateEvent> events = Feed(
      acc,
      {R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
       R"({"choices":[{"index":0,"delta":{"reasoning_content":"think "}}]})",
       R"({"choices":[{"index":0,"delta":{"reasoning":"more"}}]})",
       R"({"choices":[{"index":0,"delta":{"content":"Let me check."}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"365174485","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"2","function":{"name":"noop","arguments":"{}"}}]}}]})",
       R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
       R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}})",
       "[DONE]"});
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].kind, Kind::kReasoning);
  EXPECT_EQ(events[0].text, "think ");
  EXPECT_EQ(events[1].text, "more");
  EXPECT_EQ(events[2].kind, Kind::kContent);
  EXPECT_EQ(events[3].kind, Kind::kToolCallDelta);
  EXPECT_EQ(events[3].tool_id, "365174485");
  EXPECT_EQ(events[3].tool_name, "get_weather");
  EXPECT_EQ(events[3].text, "");
  EXPECT_EQ(events[4].tool_id, "");
  EXPECT_EQ(events[4].text, "{\"city\":");
  EXPECT_EQ(events[6].tool_index, 1);
  EXPECT_TRUE(acc.saw_done());
  EXPECT_TRUE(acc.saw_finish());
  const GenerateResult& r = acc.result();
  EXPECT_EQ(r.reasoning, "think more");
  EXPECT_EQ(r.content, "Let me check.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id, "365174485");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.tool_calls[1].name, "noop");
  EXPECT_EQ(r.stats.stop_reason, StopReason::kToolCalls);
  EXPECT_EQ(r.stats.prompt_tokens, 12);
  EXPECT_EQ(r.stats.completion_tokens, 9);
  EXPECT_FALSE(r.stats.upstream_timings);
}

TEST(CompletionAccumulatorTest, RestV0StatsWhenAsked) {
  const std::vector<std::string> chunks = {
      R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})",
      R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1},"stats":{"tokens_per_second":51.5,"time_to_first_token":0.111,"generation_time":0.9,"stop_reason":"stopStringFound","stop_string":"\n"}})",
      "[DONE]"};
  CompletionAccumulator with(true, "http://h:1", "/api/v0/chat/completions");
  Feed(with, chunks);
  EXPECT_TRUE(with.result().stats.upstream_timings);
  EXPECT_EQ(*with.result().stats.tokens_per_second, 51.5);
  EXPECT_EQ(*with.result().stats.time_to_first_token, absl::Milliseconds(111));
  EXPECT_EQ(with.result().stats.stop_reason, StopReason::kStopString);
  EXPECT_EQ(with.result().stats.stop_string, "\n");

  CompletionAccumulator without(false, "http://h:1", "/v1/chat/completions");
  Feed(without, chunks);
  EXPECT_FALSE(without.result().stats.upstream_timings);
  EXPECT_FALSE(without.result().stats.tokens_per_second);
  EXPECT_EQ(without.result().stats.stop_reason, StopReason::kEos);
}

TEST(CompletionAccumulatorTest, TextCompletionChunks) {
  CompletionAccumulator acc(false, "http://h:1", "/v1/completions");
  auto events = Feed(acc, {R"({"object":"text_completion","choices":[{"index":0,"text":"Once"}]})",
                           R"({"choices":[{"index":0,"text":" upon","finish_reason":"length"}]})"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(acc.result().content, "Once upon");
  EXPECT_EQ(acc.result().stats.stop_reason, StopReason::kMaxTokens);
  EXPECT_FALSE(acc.saw_done());
  EXPECT_TRUE(acc.saw_finish());
}

TEST(CompletionAccumulatorTest, ErrorsInTheStream) {
  absl::Status last;
  CompletionAccumulator a(false, "http://h:1", "/v1/chat/completions");
  Feed(a, {R"({"choices":[{"index":0,"delta":{"content":"x"}}]})",
           R"({"error":{"message":"Model unloaded mid-prediction"}})"},
       &last);
  EXPECT_EQ(last.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(last.message(), HasSubstr("LM Studio at http://h:1: Model unloaded"));

  CompletionAccumulator b(false, "http://h:1", "/v1/chat/completions");
  Feed(b, {R"({"error":"Invalid model identifier \"x\""})"}, &last);
  EXPECT_EQ(last.code(), absl::StatusCode::kNotFound);

  CompletionAccumulator c(false, "http://h:1", "/v1/chat/completions");
  Feed(c, {"{truncated"}, &last);
  EXPECT_EQ(last.code(), absl::StatusCode::kInternal);
}

TEST(CompletionAccumulatorTest, WholeNonStreamedAnswer) {
  CompletionAccumulator acc(true, "http://h:1", "/api/v0/chat/completions");
  std::vector<GenerateEvent> events;
  ASSERT_TRUE(acc.AddWhole(R"({"id":"chatcmpl-1","object":"chat.completion",
      "choices":[{"index":0,"message":{"role":"assistant","content":"Sure.","reasoning_content":"hmm",
        "tool_calls":[{"id":"7","type":"function","function":{"name":"f","arguments":"{}"}}]},
        "finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":148,"completion_tokens":21,"total_tokens":169},
      "stats":{}})",
                           &events)
                  .ok());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(acc.result().content, "Sure.");
  EXPECT_EQ(acc.result().reasoning, "hmm");
  ASSERT_EQ(acc.result().tool_calls.size(), 1u);
  EXPECT_EQ(acc.result().tool_calls[0].arguments, "{}");
  EXPECT_EQ(acc.result().stats.completion_tokens, 21);
  EXPECT_FALSE(acc.result().stats.upstream_timings);  // empty stats block
  EXPECT_TRUE(acc.saw_done());
}

// Numbers from the host out of range: no undefined float-to-int cast (1e300; UBSan under the
// http_wire fuzzer) and no wrap (4294967296 must not become tool call 0, nor 1e10 tokens a
// negative count). A non-integral index (1.9) is no index (backends/json.h), not truncated to
// 1; an integral float (1.0, a JS number) is one.
TEST(CompletionAccumulatorTest, OutOfRangeNumbersAreIgnored) {
  CompletionAccumulator acc(/*use_upstream_stats=*/false, "http://h:1", "/v1/chat/completions");
  std::vector<GenerateEvent> events = Feed(
      acc,
      {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":4294967296,"id":"wrap"},)"
       R"({"index":1e300,"id":"huge"},{"index":-1e300},{"index":1.9,"id":"frac"},)"
       R"({"index":1.0,"id":"one"}]}}]})",
       R"({"choices":[{"index":1e30,"delta":{"content":"other"}},{"index":4294967296,)"
       R"("delta":{"content":"other"}},{"delta":{"content":"mine"}}]})",
       R"({"choices":[],"usage":{"prompt_tokens":1e300,"completion_tokens":10000000000}})"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].tool_index, 1);
  EXPECT_EQ(events[0].tool_id, "one");
  EXPECT_EQ(events[1].text, "mine");
  EXPECT_EQ(acc.result().tool_calls.size(), 2u);
  EXPECT_EQ(acc.result().tool_calls[0].id, "");
  EXPECT_EQ(acc.result().stats.prompt_tokens, 0);
  EXPECT_EQ(acc.result().stats.completion_tokens, 0);
}

TEST(EmbeddingsWireTest, BodyAndAnswer) {
  Json b = Json::parse(BuildEmbeddingsBody("nomic", {"a", "b"}));
  EXPECT_EQ(b, Json::parse(R"({"model":"nomic","input":["a","b"]})"));
  auto r = ParseEmbeddingsResponse(R"({"object":"list","data":[
      {"object":"embedding","embedding":[0.5,1],"index":1},
      {"object":"embedding","embedding":[-1,0.25],"index":0}],
      "model":"nomic","usage":{"prompt_tokens":4,"total_tokens":4}})",
                                   2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->embeddings, (std::vector<std::vector<float>>{{-1, 0.25}, {0.5, 1}}));
  EXPECT_EQ(r->prompt_tokens, 4);
  EXPECT_EQ(ParseEmbeddingsResponse(R"({"data":[]})", 1).status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParseEmbeddingsResponse("nope", 1).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace lmgate::backends::http
