// The HTTP drivers (backends/http/json.h) and the SDK WebSocket driver (backends/sdk_ws/
// protocol.h) read LM Studio's JSON through one set of typed getters (backends/json.h), so a
// value means the same whichever driver reads it: null is absent, integers are integral numbers
// (1.0 is 1, 1.5 is not an integer), out-of-range numbers are absent, depth is bounded.
#include <cstdint>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "backends/http/json.h"
#include "backends/json.h"
#include "backends/sdk_ws/protocol.h"

namespace lmgate::backends {
namespace {

nlohmann::json Doc() {
  return nlohmann::json::parse(R"({
    "null": null, "one": 1, "one_f": 1.0, "one_half": 1.5, "neg": -7.0, "neg_half": -7.5,
    "u64_max": 18446744073709551615, "i64_max": 9223372036854775807,
    "i64_min": -9223372036854775808, "two63_f": 9223372036854775808.0, "huge_f": 1e300,
    "i32_over": 2147483648, "text": "8192", "flag": true
  })");
}

TEST(JsonGettersTest, BothDriversReadEveryValueTheSameWay) {
  const nlohmann::json d = Doc();
  struct Case {
    const char* key;
    std::optional<int64_t> want;
  };
  const Case cases[] = {
      {"absent", std::nullopt},   {"null", std::nullopt},     {"one", 1},
      {"one_f", 1},               {"one_half", std::nullopt}, {"neg", -7},
      {"neg_half", std::nullopt}, {"u64_max", std::nullopt},  {"i64_max", INT64_MAX},
      {"i64_min", INT64_MIN},     {"two63_f", std::nullopt},  {"huge_f", std::nullopt},
      {"text", std::nullopt},     {"flag", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    EXPECT_EQ(http::JsonInt(d, c.key), c.want);
    EXPECT_EQ(sdk_ws::IntMember(d, c.key), c.want);
    if (const nlohmann::json* v = sdk_ws::Member(d, c.key)) {
      EXPECT_EQ(sdk_ws::AsInt(*v), c.want);
    }
  }
  EXPECT_EQ(http::JsonInt32(d, "one_f"), 1);
  EXPECT_EQ(http::JsonInt32(d, "i32_over"), std::nullopt);
}

TEST(JsonGettersTest, NullIsAbsentForEveryGetter) {
  const nlohmann::json d = Doc();
  EXPECT_EQ(http::JsonMember(d, "null"), nullptr);
  EXPECT_EQ(sdk_ws::Member(d, "null"), nullptr);
  EXPECT_EQ(http::JsonString(d, "null", "dflt"), "dflt");
  EXPECT_EQ(sdk_ws::StringMember(d, "null", "dflt"), "dflt");
  EXPECT_EQ(http::JsonDouble(d, "null"), std::nullopt);
  EXPECT_EQ(sdk_ws::NumberMember(d, "null"), std::nullopt);
  EXPECT_EQ(http::JsonBool(d, "null"), std::nullopt);
  EXPECT_TRUE(sdk_ws::BoolMember(d, "null", true));
  // Numbers: the same doubles; strings never become numbers.
  EXPECT_EQ(http::JsonDouble(d, "one_half"), 1.5);
  EXPECT_EQ(sdk_ws::NumberMember(d, "one_half"), 1.5);
  EXPECT_EQ(http::JsonDouble(d, "text"), std::nullopt);
  EXPECT_EQ(sdk_ws::NumberMember(d, "text"), std::nullopt);
  EXPECT_EQ(http::JsonBool(d, "flag"), true);
  EXPECT_TRUE(sdk_ws::BoolMember(d, "flag", false));
}

TEST(JsonGettersTest, BothParsersBoundTheDepth) {
  const std::string deep = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  auto h = http::ParseJson(deep, "the answer");
  auto s = sdk_ws::ParseJson(deep, "the frame");
  ASSERT_FALSE(h.ok());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(h.status().message().find("nested deeper"), std::string::npos) << h.status();
  EXPECT_NE(s.status().message().find("nested deeper"), std::string::npos) << s.status();
  EXPECT_TRUE(http::ParseJson(ok, "the answer").ok());
  EXPECT_TRUE(sdk_ws::ParseJson(ok, "the frame").ok());
}

}  // namespace
}  // namespace lmgate::backends
