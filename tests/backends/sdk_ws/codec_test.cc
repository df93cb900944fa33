#include "backends/sdk_ws/codec.h"

#include <string>

#include "gtest/gtest.h"

namespace lmgate::backends::sdk_ws {
namespace {

// The §1.8 listing/success info of the protocol reference.
constexpr char kInstanceJson[] = R"({"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf",
  "displayName":"Qwen3 4B","publisher":"qwen","path":"p","sizeBytes":2497280256,
  "indexedModelIdentifier":"p","deviceIdentifier":null,"paramsString":"4B","architecture":"qwen3",
  "quantization":{"name":"Q4_K_M","bits":4},"vision":false,"trainedForToolUse":true,
  "maxContextLength":40960,"identifier":"my-qwen","instanceReference":"3qgJ7YtbD6vtf-bz",
  "ttlMs":300000,"lastUsedTime":1700000000000,"contextLength":8192})";

// Field list of the single apiOverride layer.
Json Fields(const Json& stack) { return stack["layers"][0]["config"]["fields"]; }

TEST(Models, DecodesModelAndInstanceInfo) {
  Json j = Json::parse(kInstanceJson);
  ModelInfo m = DecodeModelInfo(j);
  EXPECT_EQ(m.key, "qwen/qwen3-4b");
  EXPECT_EQ(m.display_name, "Qwen3 4B");
  EXPECT_EQ(m.type, ModelType::kLlm);
  EXPECT_EQ(m.format, "gguf");
  EXPECT_EQ(m.size_bytes, 2497280256);
  EXPECT_EQ(m.quantization, "Q4_K_M");
  EXPECT_EQ(m.quantization_bits, 4);
  EXPECT_EQ(m.max_context_length, 40960);
  EXPECT_EQ(m.publisher, "qwen");
  EXPECT_EQ(m.architecture, "qwen3");
  EXPECT_EQ(m.params, "4B");
  EXPECT_TRUE(m.trained_for_tool_use);
  EXPECT_FALSE(m.vision);

  InstanceInfo i = DecodeInstanceInfo(j);
  EXPECT_EQ(i.identifier, "my-qwen");
  EXPECT_EQ(i.model_key, "qwen/qwen3-4b");
  EXPECT_EQ(i.context_length, 8192);
  ASSERT_TRUE(i.ttl.has_value());
  EXPECT_EQ(*i.ttl, absl::Minutes(5));
  ASSERT_TRUE(i.last_used.has_value());
  EXPECT_EQ(absl::ToUnixMillis(*i.last_used), 1700000000000);
  EXPECT_EQ(i.instance_reference, "3qgJ7YtbD6vtf-bz");

  Json no_ttl = j;
  no_ttl["ttlMs"] = nullptr;
  no_ttl["lastUsedTime"] = nullptr;
  i = DecodeInstanceInfo(no_ttl);
  EXPECT_FALSE(i.ttl.has_value());
  EXPECT_FALSE(i.last_used.has_value());
}

TEST(Models, ListsSkipMalformedEntriesAndRejectNonArrays) {
  Json list = Json::array({Json::parse(kInstanceJson), 42, Json::object(), nullptr});
  auto models = DecodeModelList(list);
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->size(), 1u);
  auto instances = DecodeInstanceList(list);
  ASSERT_TRUE(instances.ok());
  EXPECT_EQ(instances->size(), 1u);
  EXPECT_EQ(DecodeModelList(Json::object()).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(DecodeInstanceList(Json()).status().code(), absl::StatusCode::kInternal);
}

TEST(Load, MatchesTheSdk200BytesOfTheReference) {
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.identifier = "my-qwen";
  p.ttl = absl::Seconds(300);
  p.context_length = 8192;
  p.gpu_offload_ratio = 0.5;
  auto creation = EncodeLoadModel(p, ModelType::kLlm);
  ASSERT_TRUE(creation.ok()) << creation.status();
  // §1.8, verbatim (nlohmann sorts object keys; field order is the SDK's).
  EXPECT_EQ(*creation, Json::parse(R"({"modelKey":"qwen/qwen3-4b","identifier":"my-qwen","ttlMs":300000,
    "loadConfigStack":{"layers":[{"layerName":"apiOverride","config":{"fields":[
      {"key":"llm.load.llama.autoFit","value":false},{"key":"llm.load.mlx.autoFit","value":false},
      {"key":"llm.load.yuzu.autoFit","value":false},
      {"key":"llm.load.llama.acceleration.offloadRatio","value":0.5},
      {"key":"llm.load.contextLength","value":8192}]}}]}})"));
}

TEST(Load, ParallelSlotsFromTheLoadConfig) {
  EXPECT_EQ(DecodeParallelSlots(Json::parse(
                R"({"fields":[{"key":"llm.load.numParallelSessions","value":2}]})")),
            2);
  EXPECT_EQ(DecodeParallelSlots(Json::parse(
                R"({"fields":[{"key":"llm.load.contextLength","value":4096}]})")),
            4);  // left out: the SDK's default
  EXPECT_EQ(DecodeParallelSlots(Json::parse(
                R"({"fields":[{"key":"llm.load.numParallelSessions","value":0}]})")),
            std::nullopt);
  EXPECT_EQ(DecodeParallelSlots(Json::parse(
                R"({"fields":[{"key":"llm.load.numParallelSessions","value":"x"}]})")),
            std::nullopt);
  EXPECT_EQ(DecodeParallelSlots(Json::parse("[]")), std::nullopt);
}

TEST(Load, MinimalAndFullLlmConfigs) {
  LoadParams p;
  p.model_key = "k";
  auto creation = EncodeLoadModel(p, ModelType::kUnknown);
  ASSERT_TRUE(creation.ok());
  EXPECT_EQ(creation->dump(),
            R"({"loadConfigStack":{"layers":[{"config":{"fields":[]},"layerName":"apiOverride"}]},"modelKey":"k"})");

  p.parallel_slots = 2;
  p.rope_frequency_base = 10000;
  p.rope_frequency_scale = 0.5;
  p.eval_batch_size = 256;
  p.flash_attention = true;
  p.cpu_threads = 6;
  creation = EncodeLoadModel(p, ModelType::kLlm);
  ASSERT_TRUE(creation.ok());
  EXPECT_EQ(Fields(creation->at("loadConfigStack")), Json::parse(R"([
    {"key":"llm.load.numParallelSessions","value":2},
    {"key":"llm.load.llama.ropeFrequencyBase","value":{"checked":true,"value":10000}},
    {"key":"llm.load.llama.ropeFrequencyScale","value":{"checked":true,"value":0.5}},
    {"key":"llm.load.llama.evalBatchSize","value":256},
    {"key":"llm.load.llama.flashAttention","value":true},
    {"key":"llm.load.llama.cpuThreadPoolSize","value":6}])"));
}

TEST(Load, EmbeddingKeys) {
  LoadParams p;
  p.model_key = "nomic";
  p.context_length = 2048;
  p.gpu_offload_ratio = 1;
  p.flash_attention = true;  // not an embedding option: not sent
  p.parallel_slots = 4;      // idem
  auto creation = EncodeLoadModel(p, ModelType::kEmbedding);
  ASSERT_TRUE(creation.ok());
  EXPECT_EQ(Fields(creation->at("loadConfigStack")), Json::parse(R"([
    {"key":"embedding.load.contextLength","value":2048},
    {"key":"embedding.load.llama.acceleration.offloadRatio","value":1.0}])"));
}

TEST(Load, RejectsOutOfRangeValues) {
  LoadParams p;
  EXPECT_EQ(EncodeLoadModel(p, ModelType::kLlm).status().code(), absl::StatusCode::kInvalidArgument);
  p.model_key = "k";
  p.gpu_offload_ratio = 1.5;
  EXPECT_EQ(EncodeLoadModel(p, ModelType::kLlm).status().code(), absl::StatusCode::kInvalidArgument);
  p.gpu_offload_ratio.reset();
  p.context_length = 0;
  EXPECT_EQ(EncodeLoadModel(p, ModelType::kLlm).status().code(), absl::StatusCode::kInvalidArgument);
  p.context_length.reset();
  p.ttl = absl::ZeroDuration();
  EXPECT_EQ(EncodeLoadModel(p, ModelType::kLlm).status().code(), absl::StatusCode::kInvalidArgument);
  p.ttl.reset();
  p.parallel_slots = 0;
  EXPECT_EQ(EncodeLoadModel(p, ModelType::kLlm).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Load, DecodesChannelMessages) {
  LoadMessage m = DecodeLoadMessage(Json::parse(R"({"type":"resolved","info":{"type":"embedding"}})"));
  EXPECT_EQ(m.kind, LoadMessage::Kind::kResolved);
  EXPECT_EQ(m.resolved_type, ModelType::kEmbedding);
  m = DecodeLoadMessage(Json::parse(R"({"type":"progress","progress":0.25})"));
  EXPECT_EQ(m.kind, LoadMessage::Kind::kProgress);
  EXPECT_DOUBLE_EQ(m.progress, 0.25);
  m = DecodeLoadMessage(Json::parse(R"({"type":"progress","progress":7})"));
  EXPECT_DOUBLE_EQ(m.progress, 1.0);
  m = DecodeLoadMessage(Json::parse(std::string(R"({"type":"success","info":)") + kInstanceJson + "}"));
  EXPECT_EQ(m.kind, LoadMessage::Kind::kSuccess);
  EXPECT_EQ(m.info.identifier, "my-qwen");
  EXPECT_EQ(DecodeLoadMessage(Json("x")).kind, LoadMessage::Kind::kOther);
  EXPECT_EQ(EncodeUnloadModel("my-qwen"), Json::parse(R"({"identifier":"my-qwen","deviceIdentifier":null})"));
}

GenerateRequest ChatRequest() {
  GenerateRequest r;
  r.model = "my-qwen";
  r.messages = {{"system", "You are terse."}, {"user", "Say hello."}};
  return r;
}

TEST(Predict, MatchesTheReferenceChatExample) {
  GenerateRequest r = ChatRequest();
  r.instance_reference = "3qgJ7YtbD6vtf-bz";
  r.sampling.temperature = 0.2;
  r.sampling.max_tokens = 100;
  r.sampling.stop = {"\n\n"};
  r.overflow = OverflowPolicy::kStopAtLimit;
  auto creation = EncodePredictCreation(r);
  ASSERT_TRUE(creation.ok()) << creation.status();
  // §1.9, verbatim.
  EXPECT_EQ(*creation, Json::parse(R"({"modelSpecifier":{"type":"instanceReference","instanceReference":"3qgJ7YtbD6vtf-bz"},"history":{"messages":[{"role":"system","content":[{"type":"text","text":"You are terse."}]},{"role":"user","content":[{"type":"text","text":"Say hello."}]}]},"predictionConfigStack":{"layers":[{"layerName":"apiOverride","config":{"fields":[{"key":"llm.prediction.temperature","value":0.2},{"key":"llm.prediction.contextOverflowPolicy","value":"stopAtLimit"},{"key":"llm.prediction.maxPredictedTokens","value":{"checked":true,"value":100}},{"key":"llm.prediction.stopStrings","value":["\n\n"]}]}}]}})"));
  EXPECT_EQ(PredictEndpoint(r), "predict");
}

TEST(Predict, AllSamplingKeys) {
  GenerateRequest r = ChatRequest();
  r.sampling.top_k = 40;
  r.sampling.top_p = 0.9;
  r.sampling.min_p = 0.05;
  r.sampling.repeat_penalty = 1.1;
  r.sampling.presence_penalty = 0.5;
  r.sampling.frequency_penalty = 0.25;
  r.sampling.seed = 42;
  r.json_schema = R"({"type":"object","properties":{"a":{"type":"string"}}})";
  r.tool_choice = ToolChoice::kRequired;
  auto stack = EncodePredictionConfigStack(r);
  ASSERT_TRUE(stack.ok()) << stack.status();
  EXPECT_EQ(Fields(*stack), Json::parse(R"([
    {"key":"llm.prediction.structured","value":{"type":"json","jsonSchema":{"type":"object","properties":{"a":{"type":"string"}}}}},
    {"key":"llm.prediction.toolChoice","value":{"type":"generic","mode":"required"}},
    {"key":"llm.prediction.topKSampling","value":40},
    {"key":"llm.prediction.repeatPenalty","value":{"checked":true,"value":1.1}},
    {"key":"llm.prediction.llama.presencePenalty","value":{"checked":true,"value":0.5}},
    {"key":"llm.prediction.llama.frequencyPenalty","value":{"checked":true,"value":0.25}},
    {"key":"llm.prediction.minPSampling","value":{"checked":true,"value":0.05}},
    {"key":"llm.prediction.topPSampling","value":{"checked":true,"value":0.9}},
    {"key":"llm.prediction.seed","value":{"checked":true,"value":42}}])"));
  // Model given by identifier → query specifier.
  auto creation = EncodePredictCreation(r);
  ASSERT_TRUE(creation.ok());
  EXPECT_EQ(creation->at("modelSpecifier"),
            Json::parse(R"({"type":"query","query":{"identifier":"my-qwen"}})"));
}

TEST(Predict, UnlimitedMaxTokensIsAnUncheckedBox) {
  GenerateRequest r = ChatRequest();
  r.sampling.max_tokens = -1;
  auto stack = EncodePredictionConfigStack(r);
  ASSERT_TRUE(stack.ok());
  EXPECT_EQ(Fields(*stack)[0]["value"], Json::parse(R"({"checked":false,"value":1})"));
}

TEST(Predict, ToolsAndToolHistory) {
  GenerateRequest r = ChatRequest();
  r.tools = {{"get_weather", "Weather now",
              R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"},
             {"ping", "", ""}};
  Message call;
  call.role = "assistant";
  call.tool_calls = {{"c1", "get_weather", R"({"city":"Oslo"})"}};
  Message result;
  result.role = "tool";
  result.content = "-3C";
  result.tool_call_id = "c1";
  result.name = "get_weather";
  r.messages.push_back(call);
  r.messages.push_back(result);
  auto creation = EncodePredictCreation(r);
  ASSERT_TRUE(creation.ok()) << creation.status();
  EXPECT_EQ(Fields(creation->at("predictionConfigStack"))[0], Json::parse(R"(
    {"key":"llm.prediction.tools","value":{"type":"toolArray","tools":[
      {"type":"function","function":{"name":"get_weather","description":"Weather now",
        "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
      {"type":"function","function":{"name":"ping","parameters":{"type":"object","properties":{}}}}]}})"));
  const Json& messages = creation->at("history").at("messages");
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[2], Json::parse(R"({"role":"assistant","content":[{"type":"toolCallRequest",
    "toolCallRequest":{"type":"function","id":"c1","name":"get_weather","arguments":{"city":"Oslo"}}}]})"));
  EXPECT_EQ(messages[3], Json::parse(R"({"role":"tool","content":[{"type":"toolCallResult",
    "content":"-3C","toolCallId":"c1","name":"get_weather"}]})"));
}

TEST(Predict, InvalidInputsAreInvalidArgument) {
  auto code = [](GenerateRequest r) { return EncodePredictCreation(r).status().code(); };
  GenerateRequest r = ChatRequest();
  r.messages.push_back({"wizard", "hi"});
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  r.json_schema = "{not json";
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  r.json_schema = "[1]";
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  r.tools = {{"t", "", R"({"type":"array"})"}};
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  Message bad_call;
  bad_call.role = "assistant";
  bad_call.tool_calls = {{"c", "t", "[1,2]"}};
  r.messages.push_back(bad_call);
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  r.messages.clear();
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = ChatRequest();
  r.model.clear();
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
}

TEST(Predict, RawCompletion) {
  GenerateRequest r;
  r.chat = false;
  r.model = "m";
  r.prompt = "Once upon";
  auto creation = EncodePredictCreation(r);
  ASSERT_TRUE(creation.ok());
  EXPECT_EQ(PredictEndpoint(r), "completeRawText");
  EXPECT_EQ(creation->at("rawPrompt"), "Once upon");
  EXPECT_FALSE(creation->contains("history"));
}

TEST(EmbedAndTokenize, PayloadsAndResults) {
  EXPECT_EQ(EncodeEmbedString("nomic", "hi"), Json::parse(R"({"modelSpecifier":{"type":"query",
    "query":{"identifier":"nomic"}},"inputString":"hi"})"));
  EXPECT_EQ(EncodeTokenizerInput("m", "hi"), Json::parse(R"({"specifier":{"type":"query",
    "query":{"identifier":"m"}},"inputString":"hi"})"));
  auto e = DecodeEmbedding(Json::parse(R"({"embedding":[0.5,-1,2]})"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, (std::vector<float>{0.5f, -1.f, 2.f}));
  EXPECT_FALSE(DecodeEmbedding(Json::parse(R"({"embedding":[1e300]})")).ok());
  EXPECT_FALSE(DecodeEmbedding(Json::parse(R"({"embedding":["x"]})")).ok());
  EXPECT_FALSE(DecodeEmbedding(Json()).ok());
  auto t = DecodeTokens(Json::parse(R"({"tokens":[1,2,3]})"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(DecodeTokens(Json::parse(R"({"tokens":[1e12]})")).ok());
  EXPECT_FALSE(DecodeTokens(Json::parse(R"({"tokens":[1.5]})")).ok());
  auto c = DecodeTokenCount(Json::parse(R"({"tokenCount":12})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 12);
  EXPECT_FALSE(DecodeTokenCount(Json::parse(R"({"tokenCount":-1})")).ok());
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws
