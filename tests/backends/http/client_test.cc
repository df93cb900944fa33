#include "backends/http/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
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

TestServer::Handler Json(int status, std::string body) {
  return [status, body](const TestRequest&, TestConnection& c) {
    c.Respond(status, "application/json", body);
  };
}

TEST(HttpClientTest, CreateValidates) {
  EXPECT_EQ(HttpClient::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpClientTest, DoReturnsBodyAndSendsHeaders) {
  TestServer server(Json(200, R"({"data":[]})"));
  HttpClient::Options o;
  o.api_token = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";
  auto client = MakeClient(server.base_url() + "/", o);
  ASSERT_EQ(client->base_url(), server.base_url());
  HttpRequest req{"POST", "/v1/embeddings", R"({"input":"x"})"};
  auto r = client->Do(CallContext{}, req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"data":[]})");
  EXPECT_EQ(r->content_type, "application/json");
  std::vector<TestRequest> seen = server.received();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].path, "/v1/embeddings");
  EXPECT_EQ(seen[0].body, R"({"input":"x"})");
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(seen[0].headers["content-type"], "application/json");
  EXPECT_EQ(seen[0].headers.count("expect"), 0u);
}

TEST(HttpClientTest, NoAuthorizationHeaderWithoutToken) {
  TestServer server(Json(200, "{}"));
  auto client = MakeClient(server.base_url());
  ASSERT_TRUE(client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"}).ok());
  EXPECT_EQ(server.received()[0].headers.count("authorization"), 0u);
}

TEST(HttpClientTest, ForwardsTheCallersTraceContext) {
  TestServer server(Json(200, "{}"));
  auto client = MakeClient(server.base_url());
  CallContext ctx;
  ctx.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE(client->Do(ctx, HttpRequest{"GET", "/v1/models"}).ok());
  ASSERT_TRUE(client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"}).ok());
  std::vector<TestRequest> seen = server.received();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].headers["traceparent"], ctx.traceparent);
  EXPECT_EQ(seen[1].headers.count("traceparent"), 0u);
}

TEST(HttpClientTest, KeepAliveReusesOneConnection) {
  TestServer server(Json(200, "{}"));
  auto client = MakeClient(server.base_url());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client->Do(CallContext{}, HttpRequest{"GET", "/v1/models"}).ok());
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client->stats().connections_opened, 1);
  EXPECT_EQ(client->stats().calls, 5);
  EXPECT_EQ(client->stats().active, 0);
}

TEST(HttpClientTest, ErrorAnswersGoThroughTheTable) {
  TestServer server(Json(
      400, R"({"error":{"message":"Invalid model identifier \"nope\".","code":"model_not_found"}})"));
  auto client = MakeClient(server.base_url());
  auto r = client->Do(CallContext{}, HttpRequest{"POST", "/v1/chat/completions", "{}"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(),
              HasSubstr("LM Studio at " + server.base_url() + ": Invalid model identifier"));
}

TEST(HttpClientTest, UnexpectedEndpointWith200IsUnimplemented) {
  TestServer server(Json(200, R"j({"error":"Unexpected endpoint or method. (GET /api/v1/models)"})j"));
  auto client = MakeClient(server.base_url());
  EXPECT_EQ(client->Do(CallContext{}, HttpRequest{"GET", "/api/v1/models"}).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(HttpClientTest, DoHonoursTheCallersDeadline) {
  absl::Notification release;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    c.Abort();
  });
  auto client = MakeClient(server.base_url());
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(200);
  absl::Time start = absl::Now();
  auto r = client->Do(ctx, HttpRequest{"GET", "/slow"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("deadline"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  release.Notify();
}

TEST(HttpClientTest, DoHonoursTheRequestTimeout) {
  absl::Notification release;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    c.Abort();
  });
  auto client = MakeClient(server.base_url());
  HttpRequest req{"GET", "/slow"};
  req.timeout = absl::Milliseconds(200);
  auto r = client->Do(CallContext{}, req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("did not finish GET /slow in time"));
  release.Notify();
}

TEST(HttpClientTest, CancelTokenAbortsDoAndClosesTheConnection) {
  absl::Notification arrived, closed;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    arrived.Notify();
    if (c.WaitForPeerClose(absl::Seconds(10))) closed.Notify();
  });
  auto client = MakeClient(server.base_url());
  CallContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  absl::StatusOr<HttpResponse> result;
  std::thread caller([&] { result = client->Do(ctx, HttpRequest{"GET", "/slow"}); });
  arrived.WaitForNotification();
  ctx.cancel->Cancel();
  caller.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(HttpClientTest, AlreadyCancelledCallSendsNothing) {
  TestServer server(Json(200, "{}"));
  auto client = MakeClient(server.base_url());
  CallContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->Cancel();
  EXPECT_EQ(client->Do(ctx, HttpRequest{"GET", "/x"}).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(server.requests(), 0);
}

TEST(HttpClientTest, StreamDeliversBytesAsTheyArrive) {
  StreamRecorder rec;
  std::atomic<bool> saw_first{false};
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream; charset=utf-8");
    c.WriteChunk("data: one\n\n");
    // The second chunk is written only after the client got the first: a client that buffered
    // the whole body would never finish.
    saw_first = rec.WaitForBody("data: one\n\n", absl::Seconds(10));
    c.WriteChunk("data: two\n\n");
    c.EndChunked();
  });
  auto client = MakeClient(server.base_url());
  client->StartStream(CallContext{}, HttpRequest{"POST", "/v1/chat/completions", "{}"},
                      rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_TRUE(saw_first);
  EXPECT_TRUE(rec.status().ok()) << rec.status();
  EXPECT_EQ(rec.body(), "data: one\n\ndata: two\n\n");
  EXPECT_EQ(rec.response().status, 200);
  EXPECT_TRUE(rec.response().body.empty());
  EXPECT_EQ(server.received()[0].headers["accept"], "text/event-stream, application/json");
}

TEST(HttpClientTest, StreamGivesNonStreamBodyToOnDone) {
  TestServer server(Json(200, R"({"choices":[]})"));
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_TRUE(rec.status().ok());
  EXPECT_EQ(rec.body(), "");
  EXPECT_EQ(rec.response().body, R"({"choices":[]})");
}

TEST(HttpClientTest, StreamErrorAnswerMapsThroughTheTable) {
  TestServer server(Json(401, R"({"error":{"code":"invalid_api_key","message":"token required"}})"));
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(rec.body(), "");
}

TEST(HttpClientTest, StreamCancelClosesTheConnectionPromptly) {
  absl::Notification closed;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    if (c.WaitForPeerClose(absl::Seconds(10))) closed.Notify();
  });
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  auto handle = client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"},
                                    rec.Callbacks());
  ASSERT_TRUE(rec.WaitForBody("first", absl::Seconds(10)));
  absl::Time start = absl::Now();
  handle->Cancel();
  handle->Cancel();  // idempotent
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(rec.done_calls(), 1);
}

TEST(HttpClientTest, CancelTokenCancelsStream) {
  absl::Notification closed;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    if (c.WaitForPeerClose(absl::Seconds(10))) closed.Notify();
  });
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  CallContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  client->StartStream(ctx, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitForBody("first", absl::Seconds(10)));
  ctx.cancel->Cancel();
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(HttpClientTest, IdleStreamFailsUnavailable) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    c.WaitForPeerClose(absl::Seconds(10));
  });
  HttpClient::Options o;
  o.idle_timeout = absl::Milliseconds(300);
  auto client = MakeClient(server.base_url(), o);
  StreamRecorder rec;
  client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rec.status().message(), HasSubstr("sent nothing for 300ms"));
}

TEST(HttpClientTest, StreamHonoursTheDeadline) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    c.WaitForPeerClose(absl::Seconds(10));
  });
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(300);
  client->StartStream(ctx, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(rec.body(), "data: first\n\n");
}

TEST(HttpClientTest, ConnectionLossMidStreamIsUnavailable) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    c.Abort();
  });
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"}, rec.Callbacks());
  ASSERT_TRUE(rec.WaitDone());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rec.status().message(), HasSubstr("lost"));
}

TEST(HttpClientTest, ManyConcurrentStreamsShareOneLoop) {
  constexpr int kStreams = 200;
  TestServer server([](const TestRequest& r, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    for (int i = 0; i < 3; ++i) c.WriteChunk("data: " + r.body + "\n\n");
    c.EndChunked();
  });
  auto client = MakeClient(server.base_url());
  std::vector<std::unique_ptr<StreamRecorder>> recs;
  for (int i = 0; i < kStreams; ++i) {
    recs.push_back(std::make_unique<StreamRecorder>());
    client->StartStream(CallContext{}, HttpRequest{"POST", "/x", std::to_string(i)},
                        recs.back()->Callbacks());
  }
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(recs[i]->WaitDone(absl::Seconds(30)));
    EXPECT_TRUE(recs[i]->status().ok()) << recs[i]->status();
    std::string line = "data: " + std::to_string(i) + "\n\n";
    EXPECT_EQ(recs[i]->body(), line + line + line);
  }
  EXPECT_EQ(client->stats().active, 0);
}

TEST(HttpClientTest, DestroyingTheClientCancelsRunningStreams) {
  absl::Notification release;
  TestServer server([&](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: first\n\n");
    c.WaitForPeerClose(absl::Seconds(10));
  });
  auto client = MakeClient(server.base_url());
  StreamRecorder rec;
  auto handle = client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"},
                                    rec.Callbacks());
  ASSERT_TRUE(rec.WaitForBody("first", absl::Seconds(10)));
  client.reset();
  EXPECT_TRUE(rec.WaitDone(absl::Seconds(0)));
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kCancelled);
  handle->Cancel();  // harmless after the client is gone
  EXPECT_EQ(rec.done_calls(), 1);
}

TEST(HttpClientTest, DoFromTheLoopThreadIsRefused) {
  TestServer server([](const TestRequest&, TestConnection& c) {
    c.StartChunked(200, "text/event-stream");
    c.WriteChunk("data: x\n\n");
    c.EndChunked();
  });
  auto client = MakeClient(server.base_url());
  absl::Notification done;
  absl::Status inner;
  StreamCallbacks cb;
  cb.on_chunk = [&](absl::string_view) {
    if (inner.ok()) inner = client->Do(CallContext{}, HttpRequest{"GET", "/"}).status();
  };
  cb.on_done = [&](absl::Status, HttpResponse) { done.Notify(); };
  client->StartStream(CallContext{}, HttpRequest{"POST", "/x", "{}"}, std::move(cb));
  done.WaitForNotification();
  EXPECT_EQ(inner.code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace lmgate::backends::http
