// The retry policy, alone and as run by HttpClient against a local server.
#include "backends/http/retry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "backends/http/status.h"
#include "tests/backends/http/client_test_util.h"
#include "tests/backends/http/test_server.h"

namespace lmgate::backends::http {
namespace {

using ::testing::HasSubstr;
using testing::MakeClient;
using testing::StreamRecorder;
using testing::TestConnection;
using testing::TestRequest;
using testing::TestServer;

const RequestInfo kGet{"http://h:1", "GET", "/x"};

TEST(RetryPolicyTest, OnlyIdempotentUndeliveredRetryableFailuresWithinBudget) {
  RetryPolicy policy;
  policy.max_retries = 2;
  absl::Status http503 = StatusFromHttpResponse(503, "", kGet);
  absl::Status http501 = StatusFromHttpResponse(501, "", kGet);
  absl::Status http400 = StatusFromHttpResponse(400, "", kGet);
  absl::Status refused = StatusFromTransport(7 /*CURLE_COULDNT_CONNECT*/, "", false, kGet);
  EXPECT_TRUE(ShouldRetry(policy, {http503, true, false, 0}));
  EXPECT_TRUE(ShouldRetry(policy, {refused, true, false, 1}));
  EXPECT_FALSE(ShouldRetry(policy, {refused, true, false, 2}));  // budget spent
  EXPECT_FALSE(ShouldRetry(policy, {http503, false, false, 0}));  // not idempotent
  EXPECT_FALSE(ShouldRetry(policy, {http503, true, true, 0}));    // stream started
  EXPECT_FALSE(ShouldRetry(policy, {http501, true, false, 0}));
  EXPECT_FALSE(ShouldRetry(policy, {http400, true, false, 0}));
  EXPECT_FALSE(ShouldRetry(policy, {absl::UnavailableError("not from the table"), true, false, 0}));
  EXPECT_FALSE(ShouldRetry(policy, {absl::DeadlineExceededError("x"), true, false, 0}));
  policy.max_retries = 0;
  EXPECT_FALSE(ShouldRetry(policy, {http503, true, false, 0}));
}

TEST(RetryPolicyTest, IdempotentMethods) {
  EXPECT_TRUE(IsIdempotent("GET", false));
  EXPECT_TRUE(IsIdempotent("HEAD", false));
  EXPECT_FALSE(IsIdempotent("POST", false));
  EXPECT_TRUE(IsIdempotent("POST", true));
}

TEST(RetryPolicyTest, ExponentialBackoffWithJitterAndCap) {
  RetryPolicy p;
  p.initial_backoff = absl::Milliseconds(100);
  p.max_backoff = absl::Milliseconds(1000);
  p.multiplier = 2;
  p.jitter = 0.5;
  EXPECT_EQ(Backoff(p, 0, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(Backoff(p, 0, 1.0), absl::Milliseconds(50));
  EXPECT_EQ(Backoff(p, 2, 0.0), absl::Milliseconds(400));
  EXPECT_EQ(Backoff(p, 10, 0.0), absl::Milliseconds(1000));
  for (int i = 0; i < 100; ++i) {
    double u = UnitRandom();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    absl::Duration d = Backoff(p, 1, u);
    EXPECT_GE(d, absl::Milliseconds(100));
    EXPECT_LE(d, absl::Milliseconds(200));
  }
}

HttpClient::Options FastRetries(int max_retries) {
  HttpClient::Options o;
  o.retry.max_retries = max_retries;
  o.retry.initial_backoff = absl::Milliseconds(1);
  o.retry.max_backoff = absl::Milliseconds(5);
  return o;
}

// Answers 503 to the first `failures` requests, then 200.
TestServer::Handler FailFirst(int failures, std::atomic<int>* seen) {
  return [failures, seen](const TestRequest&, TestConnection& c) {
    if (++*seen <= failures) {
      c.Respond(503, "application/json", R"({"error":"busy"})");
    } else {
      c.Respond(200, "application/json", R"({"ok":true})");
    }
  };
}

TEST(ClientRetryTest, GetIsRetriedOn5xxUntilSuccess) {
  std::atomic<int> seen{0};
  TestServer server(FailFirst(2, &seen));
  auto client = MakeClient(server.base_url(), FastRetries(2));
  auto r = client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(client->stats().retries, 2);
}

TEST(ClientRetryTest, RetriesAreBoundedByMaxRetries) {
  std::atomic<int> seen{0};
  TestServer server(FailFirst(100, &seen));
  auto client = MakeClient(server.base_url(), FastRetries(2));
  auto r = client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("busy"));
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 503"));
  EXPECT_EQ(server.requests(), 3);
}

TEST(ClientRetryTest, PostIsNotRetriedUnlessMarkedIdempotent) {
  std::atomic<int> seen{0};
  TestServer server(FailFirst(1, &seen));
  auto client = MakeClient(server.base_url(), FastRetries(2));
  HttpRequest post{"POST", "/api/v1/models/load", "{}"};
  EXPECT_EQ(client->Do(CallContext{}, post).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.requests(), 1);

  seen = 0;
  post.idempotent = true;
  EXPECT_TRUE(client->Do(CallContext{}, post).ok());
  EXPECT_EQ(server.requests(), 3);
}

TEST(ClientRetryTest, ClientErrorsAreNotRetried) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.Respond(400, "application/json", R"({"error":"bad"})");
  });
  auto client = MakeClient(server.base_url(), FastRetries(3));
  EXPECT_EQ(client->Do(CallContext{}, HttpRequest{"GET", "/x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.requests(), 1);
}

TEST(ClientRetryTest, EmptyReplyIsRetriedForGet) {
  std::atomic<int> seen{0};
  TestServer server([&seen](const TestRequest&, TestConnection& c) {
    if (++seen == 1) return;  // close without an answer
    c.Respond(200, "application/json", "{}");
  });
  auto client = MakeClient(server.base_url(), FastRetries(2));
  auto r = client->Do(CallContext{}, HttpRequest{"GET", "/x"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server.requests(), 2);
}

TEST(ClientRetryTest, RefusedConnectionIsRetriedThenUnavailable) {
  // A bound socket that does not listen refuses connections.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto client = MakeClient(url, FastRetries(2));
  auto r = client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("cannot connect to LM Studio at " + url));
  EXPECT_EQ(client->stats().attempts, 3);
  ::close(fd);
}

TEST(ClientRetryTest, BackoffNeverRunsPastTheDeadline) {
  std::atomic<int> seen{0};
  TestServer server(FailFirst(100, &seen));
  HttpClient::Options o;
  o.retry.max_retries = 5;
  o.retry.initial_backoff = absl::Seconds(10);
  o.retry.max_backoff = absl::Seconds(10);
  auto client = MakeClient(server.base_url(), o);
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Seconds(2);
  absl::Time start = absl::Now();
  auto r = client->Do(ctx, HttpRequest{"GET", "/x"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);  // the 503, not a timeout
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(server.requests(), 1);
}

TEST(ClientRetryTest, IdempotentStreamIsRetriedBeforeItsFirstByte) {
  std::atomic<int> seen{0};
  TestServer server([&seen](const TestRequest&, TestConnection& c) {
    if (++seen == 1) {
      c.Respond(503, "application/json", R"({"error":"warming up"})");
      return;
    }
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: hello\n\n");
    c.EndChunked();
  });
  auto client = MakeClient(server.base_url(), FastRetries(2));
  StreamRecorder rec;
  HttpRequest req{"POST", "/v1/chat/completions", "{}"};
  req.idempotent = true;
  client->StartStream(CallContext{}, req, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_TRUE(rec.status().ok()) << rec.status();
  EXPECT_EQ(rec.body(), "data: hello\n\n");
  EXPECT_EQ(server.requests(), 2);
}

TEST(ClientRetryTest, StreamIsNeverRetriedAfterBytesWereDelivered) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: partial\n\n");
    c.Abort();
  });
  auto client = MakeClient(server.base_url(), FastRetries(3));
  StreamRecorder rec;
  HttpRequest req{"GET", "/stream"};  // idempotent, yet must not be retried
  client->StartStream(CallContext{}, req, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kUnavailable) << rec.status();
  EXPECT_EQ(rec.body(), "data: partial\n\n");
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(client->stats().retries, 0);
}

}  // namespace
}  // namespace lmgate::backends::http
