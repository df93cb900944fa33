// StartGenerateStream / DoEmbeddings against the local test server: the paths the emulator does
// not exercise (JSON instead of SSE, truncated streams, in-stream errors, early cancel).
#include "backends/http/openai_calls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "backends/http/json.h"
#include "tests/backends/http/client_test_util.h"
#include "tests/backends/http/driver_test_util.h"
#include "tests/backends/http/test_server.h"

namespace lmgate::backends::http {
namespace {

using ::testing::HasSubstr;
using backends::testing::RecordingObserver;
using testing::MakeClient;
using testing::TestConnection;
using testing::TestRequest;
using testing::TestServer;

const GenerateStreamOptions kOptions{"/v1/chat/completions", "/v1/completions", false};

GenerateRequest Hello() {
  GenerateRequest r;
  r.model = "m";
  r.messages = {{"user", "hi"}};
  return r;
}

std::string Chunk(const std::string& json) { return "data: " + json + "\n\n"; }

TEST(OpenAiCallsTest, StreamsEventsMeasuresTimingsAndCountsPiecesWithoutUsage) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk(Chunk(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]})"));
    c.WriteChunk(Chunk(R"({"choices":[{"index":0,"delta":{"content":"lo"}}]})"));
    c.WriteChunk(Chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})") +
                 "data: [DONE]\n\n");
    c.EndChunked();
  });
  auto client = MakeClient(server.base_url());
  auto obs = std::make_shared<RecordingObserver>();
  StartGenerateStream(*client, {}, Hello(), kOptions, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_EQ(obs->result()->content, "Hello");
  EXPECT_EQ(obs->events().size(), 2u);
  const GenerateStats s = obs->result()->stats;  // result() returns a copy
  EXPECT_EQ(s.completion_tokens, 2);  // no usage chunk: streamed pieces
  EXPECT_TRUE(s.time_to_first_token.has_value());
  EXPECT_FALSE(s.upstream_timings);
  std::vector<TestRequest> seen = server.received();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  Json body = Json::parse(seen[0].body);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
}

TEST(OpenAiCallsTest, JsonAnswerInsteadOfAStreamIsAccepted) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.Respond(200, "application/json", R"({"object":"chat.completion","choices":[{"index":0,
        "message":{"role":"assistant","content":"whole"},"finish_reason":"length"}],
        "usage":{"prompt_tokens":2,"completion_tokens":1}})");
  });
  auto client = MakeClient(server.base_url());
  auto obs = std::make_shared<RecordingObserver>();
  StartGenerateStream(*client, {}, Hello(), kOptions, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_EQ(obs->content(), "whole");
  EXPECT_EQ(obs->result()->stats.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(obs->result()->stats.completion_tokens, 1);
}

TEST(OpenAiCallsTest, TruncatedStreamIsUnavailable) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk(Chunk(R"({"choices":[{"index":0,"delta":{"content":"cut"}}]})"));
    c.EndChunked();  // a clean end, but no finish_reason and no [DONE]
  });
  auto client = MakeClient(server.base_url());
  auto obs = std::make_shared<RecordingObserver>();
  StartGenerateStream(*client, {}, Hello(), kOptions, obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(obs->result().status().message(), HasSubstr("ended before"));
  EXPECT_EQ(obs->content(), "cut");
}

TEST(OpenAiCallsTest, ErrorInsideTheStreamFailsAndAbortsTheTransfer) {
  absl::Notification closed;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk(Chunk(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})"));
    c.WriteChunk(Chunk(R"({"error":{"message":"The model crashed"}})"));
    if (c.WaitForPeerClose(absl::Seconds(10))) closed.Notify();
  });
  auto client = MakeClient(server.base_url());
  auto obs = std::make_shared<RecordingObserver>();
  StartGenerateStream(*client, {}, Hello(), kOptions, obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(obs->result().status().message(), HasSubstr("The model crashed"));
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(OpenAiCallsTest, CancelRightAfterStartIsCancelled) {
  absl::Notification closed;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    if (c.WaitForPeerClose(absl::Seconds(10))) closed.Notify();
  });
  auto client = MakeClient(server.base_url());
  auto obs = std::make_shared<RecordingObserver>();
  auto handle = StartGenerateStream(*client, {}, Hello(), kOptions, obs);
  handle->Cancel();
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(obs->complete_calls(), 1);
  // Either the request never left, or the server saw the connection close.
  if (server.requests() > 0) {
    EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
  }
}

TEST(OpenAiCallsTest, EmbeddingsAreOneIdempotentCall) {
  int calls = 0;
  TestServer server([&](const TestRequest& r, TestConnection& c) {
    if (++calls == 1) {
      c.Respond(502, "text/plain", "bad gateway");
      return;
    }
    EXPECT_EQ(r.path, "/api/v0/embeddings");
    c.Respond(200, "application/json",
              R"({"data":[{"embedding":[1,2],"index":0},{"embedding":[3,4],"index":1}]})");
  });
  auto client = MakeClient(server.base_url());
  auto r = DoEmbeddings(*client, {}, "/api/v0/embeddings", "e", {"a", "b"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->embeddings[1], (std::vector<float>{3, 4}));
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(DoEmbeddings(*client, {}, "/x", "e", {}).ok());  // nothing to do, no call
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace lmgate::backends::http
