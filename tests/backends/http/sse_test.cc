#include "backends/http/sse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace lmgate::backends::http {
namespace {

using ::testing::ElementsAre;
using ::testing::FieldsAre;

std::vector<SseEvent> ParseWhole(absl::string_view text) {
  SseParser parser;
  std::vector<SseEvent> out;
  EXPECT_TRUE(parser.Feed(text, &out).ok());
  EXPECT_TRUE(parser.Finish(&out).ok());
  return out;
}

// Feeds `text` split at every pair of points (i <= j) and checks the events never change.
void ExpectSplitInvariant(const std::string& text) {
  const std::vector<SseEvent> expected = ParseWhole(text);
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      SseParser parser;
      std::vector<SseEvent> out;
      ASSERT_TRUE(parser.Feed(absl::string_view(text).substr(0, i), &out).ok());
      ASSERT_TRUE(parser.Feed(absl::string_view(text).substr(i, j - i), &out).ok());
      ASSERT_TRUE(parser.Feed(absl::string_view(text).substr(j), &out).ok());
      ASSERT_TRUE(parser.Finish(&out).ok());
      ASSERT_EQ(out.size(), expected.size()) << "split at " << i << "," << j;
      for (size_t k = 0; k < out.size(); ++k) {
        EXPECT_EQ(out[k].event, expected[k].event) << i << "," << j;
        EXPECT_EQ(out[k].data, expected[k].data) << i << "," << j;
        EXPECT_EQ(out[k].id, expected[k].id) << i << "," << j;
      }
    }
  }
}

// LM Studio's OpenAI-compatible stream, as captured (§4 of the protocol notes).
const char kOpenAiStream[] =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\\n\"}}]}\n"
    "\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

// REST v1's named events.
const char kV1Stream[] =
    "event: chat.start\r\n"
    "data: {\"type\":\"chat.start\",\"model_instance_id\":\"m\"}\r\n"
    "\r\n"
    ": keep-alive comment\r\n"
    "event: message.delta\r\n"
    "data: {\"type\":\"message.delta\",\"content\":\"Hi\"}\r\n"
    "\r\n";

TEST(SseParserTest, OpenAiStream) {
  std::vector<SseEvent> events = ParseWhole(kOpenAiStream);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].event, "");
  EXPECT_EQ(events[0].data,
            "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\\n\"}}]}");
  EXPECT_EQ(events[2].data, "[DONE]");
}

TEST(SseParserTest, NamedEventsCrlfAndComments) {
  std::vector<SseEvent> events = ParseWhole(kV1Stream);
  EXPECT_THAT(events,
              ElementsAre(FieldsAre("chat.start", "{\"type\":\"chat.start\",\"model_instance_id\":\"m\"}", ""),
                          FieldsAre("message.delta", "{\"type\":\"message.delta\",\"content\":\"Hi\"}", "")));
}

TEST(SseParserTest, MultiLineDataAndFieldForms) {
  std::vector<SseEvent> events = ParseWhole(
      "data: first\ndata:second\ndata\ndata:  two spaces\n\n"  // one space dropped only
      "id: 7\nevent:x\nretry: 100\nunknown: y\ndata: z\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "first\nsecond\n\n two spaces");
  EXPECT_EQ(events[1].event, "x");
  EXPECT_EQ(events[1].id, "7");
  EXPECT_EQ(events[1].data, "z");
}

TEST(SseParserTest, CrOnlyLineEndsAndBom) {
  std::vector<SseEvent> events = ParseWhole("\xEF\xBB\xBF" "data: a\r\rdata: b\r\n\r\n");
  EXPECT_THAT(events, ElementsAre(FieldsAre("", "a", ""), FieldsAre("", "b", "")));
}

TEST(SseParserTest, EventsWithoutDataAreDroppedAndEventNameResets) {
  std::vector<SseEvent> events = ParseWhole("event: ping\n\n: only a comment\n\ndata: d\n\n");
  EXPECT_THAT(events, ElementsAre(FieldsAre("", "d", "")));
}

TEST(SseParserTest, FinishDispatchesUnterminatedLastEvent) {
  EXPECT_THAT(ParseWhole("data: [DONE]"), ElementsAre(FieldsAre("", "[DONE]", "")));
  EXPECT_THAT(ParseWhole("data: x\n"), ElementsAre(FieldsAre("", "x", "")));
  EXPECT_TRUE(ParseWhole("").empty());
  EXPECT_TRUE(ParseWhole(": comment").empty());
}

TEST(SseParserTest, EverySplitPointGivesTheSameEvents) {
  ExpectSplitInvariant(kOpenAiStream);
  ExpectSplitInvariant(kV1Stream);
  ExpectSplitInvariant("\xEF\xBB\xBF" "data: a\r\rdata: b\r\n\r\nid: 3\ndata: c\ndata: d\n\n");
  ExpectSplitInvariant("data: unterminated\r");
}

TEST(SseParserTest, ByteAtATime) {
  SseParser parser;
  std::vector<SseEvent> out;
  for (char c : std::string(kV1Stream)) ASSERT_TRUE(parser.Feed(std::string(1, c), &out).ok());
  ASSERT_TRUE(parser.Finish(&out).ok());
  EXPECT_EQ(out.size(), 2u);
}

TEST(SseParserTest, OversizedEventFailsAndStaysFailed) {
  SseParser parser(/*max_event_bytes=*/64);
  std::vector<SseEvent> out;
  EXPECT_TRUE(parser.Feed("data: small\n\n", &out).ok());
  absl::Status status = parser.Feed("data: " + std::string(100, 'x'), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(parser.Feed("data: more\n\n", &out).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(out.size(), 1u);
}

TEST(SseParserTest, ManyDataLinesAreBoundedToo) {
  SseParser parser(/*max_event_bytes=*/64);
  std::vector<SseEvent> out;
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) status = parser.Feed("data: 0123456789\n", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
}

// Property test standing in for a fuzzer until one is wired up: random streams built from the
// pieces that matter (field names, colons, every line end, BOM, comments, non-ASCII bytes), fed in
// random pieces, must give exactly the events of the whole-stream parse.
TEST(SseParserTest, RandomStreamsAndRandomSplits) {
  const std::vector<std::string> alphabet = {
      "data:", "data: ", "event:", "event: x", "id: 1", "retry: 5", ":", ": c", "\r", "\n",
      "\r\n", "\n\n", " ", "x", "{\"a\":1}", "\xEF\xBB\xBF", "\xC3\xA9", std::string("\0", 1), "[DONE]"};
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    int pieces = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int i = 0; i < pieces; ++i) {
      text += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    }
    const std::vector<SseEvent> expected = ParseWhole(text);
    SseParser parser;
    std::vector<SseEvent> out;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t n = std::uniform_int_distribution<size_t>(0, text.size() - pos)(rng);
      ASSERT_TRUE(parser.Feed(absl::string_view(text).substr(pos, n), &out).ok());
      pos += n;
    }
    ASSERT_TRUE(parser.Finish(&out).ok());
    ASSERT_EQ(out.size(), expected.size()) << text;
    for (size_t k = 0; k < out.size(); ++k) {
      EXPECT_EQ(out[k].event, expected[k].event);
      EXPECT_EQ(out[k].data, expected[k].data);
      EXPECT_EQ(out[k].id, expected[k].id);
    }
  }
}

}  // namespace
}  // namespace lmgate::backends::http
