#include "backends/rest/rest_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/http/json.h"

namespace lmgate::backends::rest {
namespace {

using ::testing::HasSubstr;

TEST(RestWireTest, QuantizationBits) {
  EXPECT_EQ(QuantizationBits("Q4_K_M"), 4);
  EXPECT_EQ(QuantizationBits("Q8_0"), 8);
  EXPECT_EQ(QuantizationBits("4bit"), 4);
  EXPECT_EQ(QuantizationBits("F16"), 16);
  EXPECT_EQ(QuantizationBits("IQ3_XS"), 3);
  EXPECT_EQ(QuantizationBits(""), 0);
  EXPECT_EQ(QuantizationBits("Q999"), 0);
}

TEST(RestWireTest, V0Models) {
  auto m = ParseV0Models(R"({"object":"list","data":[
    {"id":"qwen2-vl-7b-instruct","object":"model","type":"vlm","publisher":"mlx-community",
     "arch":"qwen2_vl","compatibility_type":"mlx","quantization":"4bit","state":"not-loaded",
     "max_context_length":32768},
    {"id":"qwen/qwen3.5-9b","type":"vlm","compatibility_type":"gguf","quantization":"Q4_K_M",
     "state":"loaded","max_context_length":262144,"loaded_context_length":4096,
     "capabilities":["tool_use"]},
    {"id":"qwen/qwen3.5-9b:2","type":"vlm","state":"loaded","loaded_context_length":8192},
    {"id":"nomic","type":"embeddings","state":"loading"}]})");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->downloaded.size(), 3u);  // the ":2" entry is an instance only
  EXPECT_EQ(m->downloaded[0].type, ModelType::kLlm);
  EXPECT_TRUE(m->downloaded[0].vision);
  EXPECT_EQ(m->downloaded[0].format, "mlx");
  EXPECT_EQ(m->downloaded[0].quantization_bits, 4);
  EXPECT_EQ(m->downloaded[0].architecture, "qwen2_vl");
  EXPECT_EQ(m->downloaded[1].max_context_length, 262144);
  EXPECT_TRUE(m->downloaded[1].trained_for_tool_use);
  EXPECT_EQ(m->downloaded[2].type, ModelType::kEmbedding);
  ASSERT_EQ(m->loaded.size(), 2u);
  EXPECT_EQ(m->loaded[0].identifier, "qwen/qwen3.5-9b");
  EXPECT_EQ(m->loaded[0].context_length, 4096);
  EXPECT_EQ(m->loaded[1].identifier, "qwen/qwen3.5-9b:2");
  EXPECT_EQ(m->loaded[1].model_key, "qwen/qwen3.5-9b");
  EXPECT_EQ(m->loading_keys, std::vector<std::string>{"nomic"});
  EXPECT_TRUE(m->downloaded_known);
  EXPECT_TRUE(m->loaded_known);
  EXPECT_EQ(ParseV0Models(R"({"models":[]})").status().code(), absl::StatusCode::kInternal);
}

TEST(RestWireTest, OutOfRangeNumbersAreUnknown) {
  auto m = ParseV1Models(R"({"models":[{"key":"k","size_bytes":1e300,"max_context_length":4294975488,
      "quantization":{"name":"Q4_K_M","bits_per_weight":1e30},
      "loaded_instances":[{"id":"i","config":{"context_length":-1e300,"parallel":18446744073709551615}}]}]})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->downloaded[0].size_bytes, 0);
  EXPECT_EQ(m->downloaded[0].max_context_length, 0);  // not 8192 (wrapped)
  EXPECT_EQ(m->downloaded[0].quantization_bits, 4);   // from the name
  EXPECT_EQ(m->loaded[0].context_length, 0);
  EXPECT_EQ(m->loaded[0].parallel_slots, 0);
  LoadParams p;
  p.model_key = "k";
  p.context_length = 4096;
  auto inst = ParseLoadResponse(R"({"instance_id":"k","load_config":{"context_length":1e100}})", p);
  ASSERT_TRUE(inst.ok()) << inst.status();
  EXPECT_EQ(inst->context_length, 4096);
}

TEST(RestWireTest, V1ModelsAndMerge) {
  auto v1 = ParseV1Models(R"({"models":[
    {"type":"llm","publisher":"qwen","key":"qwen/qwen3-4b","display_name":"Qwen3 4B",
     "architecture":"qwen3","quantization":{"name":"Q4_K_M","bits_per_weight":4},
     "size_bytes":2497280256,"params_string":"4B","max_context_length":40960,"format":"gguf",
     "capabilities":{"vision":false,"trained_for_tool_use":true},
     "loaded_instances":[{"id":"qwen/qwen3-4b","config":{"context_length":8192,"parallel":4}},
                         {"id":"my-qwen","config":{"context_length":2048}}]},
    {"type":"embedding","key":"nomic","quantization":null,"loaded_instances":[]}]})");
  ASSERT_TRUE(v1.ok()) << v1.status();
  ASSERT_EQ(v1->downloaded.size(), 2u);
  const ModelInfo& q = v1->downloaded[0];
  EXPECT_EQ(q.display_name, "Qwen3 4B");
  EXPECT_EQ(q.size_bytes, 2497280256);
  EXPECT_EQ(q.params, "4B");
  EXPECT_EQ(q.quantization, "Q4_K_M");
  EXPECT_EQ(q.quantization_bits, 4);
  EXPECT_TRUE(q.trained_for_tool_use);
  ASSERT_EQ(v1->loaded.size(), 2u);
  EXPECT_EQ(v1->loaded[0].parallel_slots, 4);
  EXPECT_EQ(v1->loaded[1].identifier, "my-qwen");
  EXPECT_EQ(v1->loaded[1].model_key, "qwen/qwen3-4b");
  EXPECT_EQ(v1->loaded[1].context_length, 2048);
  // A host that leaves an LLM's default `parallel` out: the SDK's default, 4.
  EXPECT_EQ(v1->loaded[1].parallel_slots, 4);

  HostModels v0;
  v0.downloaded.push_back(ModelInfo{"only-in-v0"});
  v0.downloaded.push_back(ModelInfo{"nomic"});
  v0.downloaded.push_back(ModelInfo{"my-qwen"});  // the real v0: a custom identifier's own row
  v0.loading_keys = {"nomic"};
  HostModels merged = MergeModels(v0, *v1);
  EXPECT_EQ(merged.downloaded.size(), 3u);
  EXPECT_EQ(merged.downloaded[2].key, "only-in-v0");
  EXPECT_EQ(merged.loaded.size(), 2u);
  EXPECT_EQ(merged.loading_keys, std::vector<std::string>{"nomic"});
}

TEST(RestWireTest, LoadBodyAndAnswer) {
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.context_length = 8192;
  p.flash_attention = true;
  p.eval_batch_size = 512;
  auto body = BuildLoadBody(p);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(http::Json::parse(*body),
            http::Json::parse(R"({"model":"qwen/qwen3-4b","context_length":8192,
                                  "flash_attention":true,"eval_batch_size":512,
                                  "echo_load_config":true})"));
  LoadParams bad = p;
  bad.identifier = "mine";
  bad.ttl = absl::Minutes(5);
  absl::Status s = BuildLoadBody(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("identifier, ttl"));
  EXPECT_THAT(s.message(), HasSubstr("sdk_ws"));
  EXPECT_EQ(BuildLoadBody(LoadParams{}).status().code(), absl::StatusCode::kInvalidArgument);

  auto inst = ParseLoadResponse(R"({"type":"llm","instance_id":"qwen/qwen3-4b:2",
      "load_time_seconds":1.5,"status":"loaded","load_config":{"context_length":8192,"parallel":2}})",
                                p);
  ASSERT_TRUE(inst.ok()) << inst.status();
  EXPECT_EQ(inst->identifier, "qwen/qwen3-4b:2");
  EXPECT_EQ(inst->model_key, "qwen/qwen3-4b");
  EXPECT_EQ(inst->type, ModelType::kLlm);
  EXPECT_EQ(inst->context_length, 8192);
  EXPECT_EQ(inst->parallel_slots, 2);
  auto omitted = ParseLoadResponse(R"({"type":"llm","instance_id":"q","status":"loaded",
      "load_config":{"context_length":8192}})", p);
  ASSERT_TRUE(omitted.ok()) << omitted.status();
  EXPECT_EQ(omitted->parallel_slots, 4);
  auto embedding = ParseLoadResponse(R"({"type":"embedding","instance_id":"e","status":"loaded",
      "load_config":{"context_length":2048}})", p);
  ASSERT_TRUE(embedding.ok()) << embedding.status();
  EXPECT_EQ(embedding->parallel_slots, 0);
  EXPECT_EQ(ParseLoadResponse(R"({"status":"loaded"})", p).status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(http::Json::parse(BuildUnloadBody("x")), http::Json::parse(R"({"instance_id":"x"})"));
}

}  // namespace
}  // namespace lmgate::backends::rest
