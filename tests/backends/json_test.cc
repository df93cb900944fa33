// The one bounded JSON parse (backends/json.h): the depth scan and the refusal before parsing.
#include "backends/json.h"

#include <string>

#include <gtest/gtest.h>

namespace lmgate::backends {
namespace {

std::string Nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(JsonDepthTest, CountsContainersOutsideStringsAndComments) {
  EXPECT_EQ(JsonDepth("1"), 0);
  EXPECT_EQ(JsonDepth("[]"), 1);
  EXPECT_EQ(JsonDepth(R"([{"a":[1,{}]},[]])"), 4);
  EXPECT_EQ(JsonDepth(R"({"a":"[[[[{{{{"})"), 1);
  EXPECT_EQ(JsonDepth(R"(["\"[[[", "\\", [[]]])"), 3);  // escaped quote and backslash
  EXPECT_EQ(JsonDepth("{// [[[[\n\"a\": /* {{{{ */ [1]}"), 2);
  EXPECT_EQ(JsonDepth("]]]][[", 10), 2);  // invalid JSON: never negative
  EXPECT_EQ(JsonDepth("\"[[[[", 10), 0);  // unterminated string
}

TEST(JsonDepthTest, StopsOnceOverTheLimit) {
  EXPECT_EQ(JsonDepth(Nested(1000000), 64), 65);
  EXPECT_EQ(JsonDepth(Nested(64), 64), 64);
}

TEST(ParseBoundedJsonTest, RefusesDeeperThanTheLimitAndParsesTheRest) {
  auto deep = ParseBoundedJson(Nested(100000), "the answer");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.status().message(), "the answer is nested deeper than 256 levels");
  auto at_limit = ParseBoundedJson(Nested(kMaxJsonDepth), "x");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->dump().size(), 2u * kMaxJsonDepth);  // dump() recurses: safe at the limit
  EXPECT_FALSE(ParseBoundedJson(Nested(3), "x", {2}).ok());
  EXPECT_EQ(ParseBoundedJson("[1,", "x").status().message(), "x is not valid JSON");
  EXPECT_FALSE(ParseBoundedJson("{/*c*/}", "x").ok());
  EXPECT_TRUE(ParseBoundedJson("{/*c*/}", "x", {kMaxJsonDepth, /*allow_comments=*/true}).ok());
}

}  // namespace
}  // namespace lmgate::backends
