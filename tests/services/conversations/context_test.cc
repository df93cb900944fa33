#include "services/conversations/context.h"

#include <gtest/gtest.h>

namespace lmgate::conversations {
namespace {

TEST(EstimateTokens, ThreeBytesPerTokenPlusOverhead) {
  backends::Message m;
  m.role = "user";
  m.content = "";
  EXPECT_EQ(EstimateTokens(m), kMessageOverheadTokens);
  m.content = "abcdefg";  // 7 bytes -> 3
  EXPECT_EQ(EstimateTokens(m), 3 + kMessageOverheadTokens);
  m.tool_calls.push_back({"1", "f", "{}"});  // " f {}" = 5 more bytes -> 12 -> 4
  EXPECT_EQ(EstimateTokens(m), 4 + kMessageOverheadTokens);
}

TEST(OldestTurnsToDrop, UnknownContextKeepsEverything) {
  FitRequest r;
  r.context_length = 0;
  r.fixed_tokens = 1'000'000;
  r.turn_tokens = {5, 5};
  auto drop = OldestTurnsToDrop(r);
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(*drop, 0u);
}

TEST(OldestTurnsToDrop, FitsKeepsEverything) {
  FitRequest r;
  r.context_length = 100;
  r.fixed_tokens = 20;
  r.turn_tokens = {40, 40};
  r.truncation = Truncation::kDisabled;
  auto drop = OldestTurnsToDrop(r);
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(*drop, 0u);
}

TEST(OldestTurnsToDrop, DisabledOverflowIsInvalidArgumentWithFigures) {
  FitRequest r;
  r.context_length = 100;
  r.fixed_tokens = 21;
  r.turn_tokens = {40, 40};
  auto drop = OldestTurnsToDrop(r);
  ASSERT_EQ(drop.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(drop.status().message().find("101 tokens"), std::string::npos) << drop.status();
  EXPECT_NE(drop.status().message().find("context of 100"), std::string::npos);
  EXPECT_NE(drop.status().message().find("truncation"), std::string::npos);
}

TEST(OldestTurnsToDrop, AutoDropsOldestUntilItFits) {
  FitRequest r;
  r.context_length = 100;
  r.fixed_tokens = 30;
  r.turn_tokens = {10, 20, 30, 25};  // 115 in all
  r.truncation = Truncation::kAuto;
  auto drop = OldestTurnsToDrop(r);
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(*drop, 2u);  // 115 - 10 = 105 > 100; - 20 = 85 fits
}

TEST(OldestTurnsToDrop, AutoKeepsRoomForTheOutput) {
  FitRequest r;
  r.context_length = 100;
  r.reserve = 30;
  r.fixed_tokens = 20;
  r.turn_tokens = {20, 20, 20};  // 80 + 30 > 100: drop one -> 60 + 30 fits
  r.truncation = Truncation::kAuto;
  auto drop = OldestTurnsToDrop(r);
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(*drop, 1u);
}

TEST(OldestTurnsToDrop, AutoCannotDropTheNewInputOrInstructions) {
  FitRequest r;
  r.context_length = 100;
  r.reserve = 10;
  r.fixed_tokens = 95;
  r.turn_tokens = {1};
  r.truncation = Truncation::kAuto;
  auto drop = OldestTurnsToDrop(r);
  ASSERT_EQ(drop.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(drop.status().message().find("new input alone"), std::string::npos) << drop.status();
  EXPECT_NE(drop.status().message().find("max_output_tokens"), std::string::npos);
}

}  // namespace
}  // namespace lmgate::conversations
