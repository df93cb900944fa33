#include "tests/emulator/text_model.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tests/emulator/catalogue.h"
#include "tests/emulator/kv_config.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;

const ModelSpec& Model(const Catalogue& c, const std::string& key) { return *c.Find(key); }

TEST(Tokenizer, RoundTripsAndIsStable) {
  const std::string text = "Hello, world!\n  <|im_start|>user\nsay <think>hi</think> ok";
  std::vector<Token> tokens = Tokenize(text);
  std::string joined;
  for (const Token& t : tokens) joined += t.text;
  EXPECT_EQ(joined, text);
  EXPECT_EQ(Tokenize("Hello world!").size(), 3u);
  EXPECT_EQ(Tokenize("Hello world!")[1].text, " world");
  EXPECT_EQ(Tokenize("Hello world!")[1].id, Tokenize("big world")[1].id);
  EXPECT_EQ(Tokenize("<|im_start|>")[0].id, 1);
  EXPECT_EQ(CountTokens(""), 0);
}

TEST(Generator, DeterministicAndSeedDependent) {
  const Catalogue c = Catalogue::BuiltIn();
  PromptInput in;
  in.messages = {{"system", "You are terse."}, {"user", "Say hello."}};
  GenerationOptions o;
  auto text = [&](const GenerationPlan& p) {
    std::string s;
    for (const PlannedToken& t : p.tokens) s += t.text;
    return s;
  };
  const std::string a = text(PlanGeneration(Model(c, "qwen/qwen3-4b"), in, o));
  EXPECT_EQ(a, text(PlanGeneration(Model(c, "qwen/qwen3-4b"), in, o)));
  o.seed = 7;
  EXPECT_NE(a, text(PlanGeneration(Model(c, "qwen/qwen3-4b"), in, o)));
  const GenerationPlan p = PlanGeneration(Model(c, "qwen/qwen3-4b"), in, o);
  EXPECT_GE(p.tokens.size(), 16u);
  EXPECT_TRUE(p.tool_calls.empty());
}

TEST(Generator, ReasoningModelThinksFirst) {
  const Catalogue c = Catalogue::BuiltIn();
  PromptInput in;
  in.messages = {{"user", "Why?"}};
  GenerationPlan p = PlanGeneration(Model(c, "qwen/qwen3-4b-thinking-2507"), in, {});
  ASSERT_GT(p.tokens.size(), 3u);
  EXPECT_EQ(p.tokens.front().kind, TokenKind::kReasoningStartTag);
  int end_tag = -1;
  for (size_t i = 0; i < p.tokens.size(); ++i) {
    if (p.tokens[i].kind == TokenKind::kReasoningEndTag) end_tag = static_cast<int>(i);
  }
  ASSERT_GT(end_tag, 1);
  EXPECT_EQ(p.tokens.back().kind, TokenKind::kContent);
  GenerationOptions off;
  off.allow_reasoning = false;
  EXPECT_EQ(PlanGeneration(Model(c, "qwen/qwen3-4b-thinking-2507"), in, off).tokens.front().kind,
            TokenKind::kContent);
}

TEST(Generator, ToolCallFollowsSchemaAndChoice) {
  const Catalogue c = Catalogue::BuiltIn();
  PromptInput in;
  in.messages = {{"user", "What is the weather in Paris? use get_weather"}};
  in.tools = ToolsFromJson(json::parse(R"([
    {"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}},
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
      "properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"]}}}])"));
  GenerationPlan p = PlanGeneration(Model(c, "qwen/qwen3-4b"), in, {});
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  EXPECT_TRUE(p.tool_calls[0].arguments["city"].is_string());
  EXPECT_TRUE(p.tool_calls[0].arguments["unit"] == "c" || p.tool_calls[0].arguments["unit"] == "f");
  EXPECT_FALSE(p.tool_calls[0].id.empty());
  EXPECT_EQ(p.tool_calls[0].id.find_first_not_of("0123456789"), std::string::npos);
  GenerationOptions none;
  none.tool_choice = "none";
  EXPECT_TRUE(PlanGeneration(Model(c, "qwen/qwen3-4b"), in, none).tool_calls.empty());
  in.messages.push_back({"tool", "sunny"});
  EXPECT_TRUE(PlanGeneration(Model(c, "qwen/qwen3-4b"), in, {}).tool_calls.empty());
}

TEST(Generator, JsonSchemaOutputIsValid) {
  const json schema = json::parse(R"({"type":"object","properties":{
    "name":{"type":"string","minLength":3},"age":{"type":"integer","minimum":1,"maximum":9},
    "tags":{"type":"array","items":{"type":"string"},"minItems":2},
    "kind":{"$ref":"#/$defs/kind"},"maybe":{"anyOf":[{"type":"null"},{"type":"boolean"}]}},
    "$defs":{"kind":{"enum":["a","b"]}}})");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    json v = SampleJsonForSchema(schema, seed);
    ASSERT_TRUE(v.is_object());
    EXPECT_GE(v["name"].get<std::string>().size(), 3u);
    EXPECT_GE(v["age"].get<int>(), 1);
    EXPECT_LE(v["age"].get<int>(), 9);
    EXPECT_GE(v["tags"].size(), 2u);
    EXPECT_TRUE(v["kind"] == "a" || v["kind"] == "b");
    EXPECT_TRUE(v["maybe"].is_boolean());
  }
}

TEST(Embeddings, UnitLengthFixedDimensionDeterministic) {
  const Catalogue c = Catalogue::BuiltIn();
  const ModelSpec& nomic = Model(c, "text-embedding-nomic-embed-text-v1.5");
  std::vector<float> a = Embed(nomic, "The quick brown fox");
  ASSERT_EQ(a.size(), 768u);
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  EXPECT_EQ(a, Embed(nomic, "The quick brown fox"));
  EXPECT_NE(a, Embed(nomic, "Something else entirely"));
  EXPECT_EQ(Embed(Model(c, "text-embedding-bge-small-en-v1.5"), "x").size(), 384u);
}

TEST(Catalogue, BuiltInAndFromJson) {
  const Catalogue c = Catalogue::BuiltIn();
  EXPECT_EQ(c.models().size(), 5u);
  ASSERT_NE(c.Find("QWEN/qwen3-4b"), nullptr);
  EXPECT_EQ(c.Find("qwen/qwen3-4b@q4_k_m"), c.Find("qwen/qwen3-4b"));
  EXPECT_EQ(c.Find("lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf"), c.Find("qwen/qwen3-4b"));
  json info = ModelInfoJson(*c.Find("qwen/qwen3-4b"));
  EXPECT_TRUE(info["deviceIdentifier"].is_null());
  EXPECT_EQ(info["maxContextLength"], 40960);
  EXPECT_TRUE(info.contains("trainedForToolUse"));
  EXPECT_FALSE(ModelInfoJson(*c.Find("text-embedding-nomic-embed-text-v1.5")).contains("vision"));

  auto ok = Catalogue::FromJson(json::parse(R"([{"modelKey":"a/b","sizeBytes":1000}])"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->models()[0].type, "llm");
  EXPECT_FALSE(Catalogue::FromJson(json::parse(R"([{"modelKey":"a"},{"modelKey":"a"}])")).ok());
  EXPECT_FALSE(Catalogue::FromJson(json::parse(R"({"x":1})")).ok());
  EXPECT_FALSE(Catalogue::FromFile("/nonexistent/catalogue.json").ok());
}

TEST(KvConfig, LastLayerWinsAndCheckedValues) {
  KvConfig kv = KvConfig::FromStack(json::parse(R"({"layers":[
    {"layerName":"a","config":{"fields":[{"key":"x","value":1},{"key":"m","value":{"checked":true,"value":64}}]}},
    {"layerName":"b","config":{"fields":[{"key":"x","value":2},{"key":"u","value":{"checked":false,"value":9}}]}}]})"));
  EXPECT_EQ(kv.Number("x"), 2);
  EXPECT_EQ(kv.Number("m"), 64);
  EXPECT_FALSE(kv.Number("u").has_value());
  EXPECT_FALSE(kv.Number("missing").has_value());
  EXPECT_EQ(kv.ToJson()["fields"].size(), 3u);
}

}  // namespace
}  // namespace lmgate::emulator
