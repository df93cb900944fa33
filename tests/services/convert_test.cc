// Request validation limits (services/convert.h) at their boundaries; the same cases through
// gRPC against the emulator are in tests/reliability/bad_input_test.cc.
#include "services/convert.h"

#include <string>

#include <gtest/gtest.h>

namespace lmgate::services {
namespace {

std::string Nested(int levels) {
  std::string s;
  for (int i = 0; i < levels; ++i) s += R"({"a":)";
  s += "1";
  return s + std::string(levels, '}');
}

v1::ChatRequest WithSchema(const std::string& schema) {
  v1::ChatRequest req;
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("hi");
  req.mutable_structured_output()->set_json_schema(schema);
  return req;
}

TEST(ConvertTest, JsonFieldsUpToTheConfiguredDepth) {
  EXPECT_TRUE(ToGenerateCall(WithSchema(Nested(64))).ok());
  auto deep = ToGenerateCall(WithSchema(Nested(65)));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.status().message(),
            "structured_output.json_schema: is nested deeper than 64 levels (config "
            "max_json_depth)");
  ValidationLimits tight;
  tight.max_json_depth = 3;
  EXPECT_TRUE(ToGenerateCall(WithSchema(Nested(3)), tight).ok());
  EXPECT_FALSE(ToGenerateCall(WithSchema(Nested(4)), tight).ok());
}

TEST(ConvertTest, ContextLengthAgainstTheModelsMaximum) {
  backends::LoadParams p;
  p.context_length = 32769;
  backends::ModelInfo m;
  m.key = "google/gemma-3-1b";
  m.max_context_length = 32768;
  absl::Status st = ValidateLoadForModel(p, m);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "config.context_length: 32769 is above the maximum of google/gemma-3-1b, 32768 tokens "
            "(its max_context_length)");
  p.context_length = 32768;
  EXPECT_TRUE(ValidateLoadForModel(p, m).ok());
  m.max_context_length = 0;  // the host did not say
  p.context_length = 1 << 20;
  EXPECT_TRUE(ValidateLoadForModel(p, m).ok());
}

TEST(ConvertTest, DurationsMustBeWellFormedAndInRange) {
  auto ttl = [](int64_t s, int32_t n) {
    v1::LoadModelRequest r;
    r.mutable_config()->mutable_ttl()->set_seconds(s);
    r.mutable_config()->mutable_ttl()->set_nanos(n);
    return ToLoadParams(r).status();
  };
  EXPECT_TRUE(ttl(1, 0).ok());
  EXPECT_TRUE(ttl(365 * 24 * 3600, 0).ok());
  EXPECT_FALSE(ttl(365 * 24 * 3600, 1).ok());
  EXPECT_FALSE(ttl(0, 999999999).ok());
  EXPECT_FALSE(ttl(5, 2000000000).ok());
  EXPECT_FALSE(ttl(5, -1).ok());
  EXPECT_FALSE(ttl(int64_t{1} << 62, 0).ok());
  EXPECT_EQ(ttl(1000000000000, 0).message(), "config.ttl: must be 1s..8760h, got 1000000000000s");
}

}  // namespace
}  // namespace lmgate::services
