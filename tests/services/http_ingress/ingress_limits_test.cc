// The ingress's edges: keys and roles (401/403), quotas (429 with Retry-After), body and header
// limits (413/431), slow and idle clients, the connection cap; and the shutdown order.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/services/http_ingress/ingress_fixture.h"

namespace lmgate::testutil {
namespace {

using nlohmann::json;

constexpr char kAppKey[] = "app-key-0123456789abcdef";
constexpr char kTightKey[] = "tight-key-0123456789abcdef";

class IngressKeysTest : public IngressFixture {
 protected:
  void ConfigureIngress(http_ingress::IngressOptions&, services::ServerOptions& so) override {
    admission::IdentityOptions io;
    admission::KeyConfig app;
    app.tenant.name = "app";
    app.tenant.models = {"qwen/*", "text-embedding-*"};
    app.key_sha256 = admission::Identity::Sha256Hex(kAppKey);
    admission::KeyConfig tight;
    tight.tenant.name = "tight";
    tight.tenant.limits.requests_per_minute = 1;
    tight.key_sha256 = admission::Identity::Sha256Hex(kTightKey);
    io.keys = {app, tight};
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    so.identity = *std::move(identity);
  }
};

TEST_F(IngressKeysTest, WrongOrMissingKeyIs401) {
  for (std::vector<std::string> h : {std::vector<std::string>{},
                                     {"Authorization: Bearer wrong-key-wrong-key"},
                                     {"x-api-key: wrong-key-wrong-key"}}) {
    HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, false), h);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(ErrorOf(r)["type"], "authentication_error");
    EXPECT_EQ(r.headers["www-authenticate"], "Bearer");
  }
  HttpCallOptions o;
  EXPECT_EQ(HttpCall(port(), "/v1/models", o).status, 401);
}

TEST_F(IngressKeysTest, BearerAndXApiKeyAuthenticate) {
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, false),
                          {absl::StrCat("Authorization: Bearer ", kAppKey)});
  EXPECT_EQ(r.status, 200) << r.body;
  HttpCallOptions o;
  o.headers = {absl::StrCat("x-api-key: ", kAppKey)};
  r = HttpCall(port(), "/v1/models", o);
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& m : json::parse(r.body)["data"]) {  // only what the key may use
    EXPECT_NE(m["id"], "google/gemma-3-1b") << r.body;
  }
}

TEST_F(IngressKeysTest, ModelOutsideTheAllowlistIs403) {
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody("google/gemma-3-1b", true),
                          {absl::StrCat("Authorization: Bearer ", kAppKey)});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(ErrorOf(r)["type"], "permission_error");
  HttpCallOptions o;
  o.headers = {absl::StrCat("Authorization: Bearer ", kAppKey)};
  EXPECT_EQ(HttpCall(port(), "/v1/models/google/gemma-3-1b", o).status, 403);
}

TEST_F(IngressKeysTest, QuotaIs429WithRetryAfter) {
  const std::vector<std::string> h = {absl::StrCat("Authorization: Bearer ", kTightKey)};
  ASSERT_EQ(HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, false), h).status, 200);
  HttpResult r = HttpPost(port(), "/v1/chat/completions", ChatBody(kModel, true), h);
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(ErrorOf(r)["type"], "rate_limit_error");
  EXPECT_FALSE(r.headers["retry-after-ms"].empty());
  EXPECT_GE(std::stoi(r.headers["retry-after"]), 1);
}

class IngressLimitsTest : public IngressFixture {
 protected:
  void ConfigureIngress(http_ingress::IngressOptions& io, services::ServerOptions&) override {
    io.server.max_connections = 4;
  }
  // A raw connection (the slow and broken clients curl cannot be).
  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }
  // Reads until the server closes the connection (true) or `within` passes (false).
  static bool ClosedWithin(int fd, absl::Duration within, std::string* got = nullptr) {
    const absl::Time until = absl::Now() + within;
    char buf[4096];
    while (absl::Now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()))) <= 0) {
        continue;
      }
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      if (got != nullptr) got->append(buf, n);
    }
    return false;
  }
};

TEST_F(IngressLimitsTest, BodyOverTheLimitIs413) {
  json body = {{"model", kModel},
               {"messages", {{{"role", "user"}, {"content", std::string(100 << 10, 'x')}}}}};
  HttpResult r = HttpPost(port(), "/v1/chat/completions", body.dump());
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_TRUE(absl::StrContains(ErrorOf(r)["message"].get<std::string>(), "http.max_body_bytes"));
  EXPECT_EQ(Stat("predictions_started"), 0);
}

TEST_F(IngressLimitsTest, OversizedHeadersAre431) {
  HttpCallOptions o;
  o.headers = {"X-Big: " + std::string(8 << 10, 'a')};
  HttpResult r = HttpCall(port(), "/v1/models", o);
  EXPECT_EQ(r.status, 431) << r.body;
  o.headers.clear();
  for (int i = 0; i < 40; ++i) o.headers.push_back(absl::StrCat("X-H", i, ": v"));
  r = HttpCall(port(), "/v1/models", o);
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_TRUE(absl::StrContains(ErrorOf(r)["message"].get<std::string>(), "http.max_headers"));
  EXPECT_EQ(HttpCall(port(), "/v1/models").status, 200);  // the server goes on
}

TEST_F(IngressLimitsTest, SlowClientIsClosed) {
  // Headers that never end: closed by the read timeout (500 ms), not held open.
  int fd = Connect();
  const std::string partial = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(ClosedWithin(fd, Scaled(absl::Seconds(5))));
  close(fd);
  // A body trickled a byte at a time is closed too: the bound covers the whole request.
  fd = Connect();
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  const absl::Time start = absl::Now();
  bool closed = false;
  while (!closed && absl::Now() - start < Scaled(absl::Seconds(5))) {
    send(fd, "x", 1, MSG_NOSIGNAL);
    closed = ClosedWithin(fd, absl::Milliseconds(50));  // the trickle's pace
  }
  EXPECT_TRUE(closed);
  close(fd);
}

TEST_F(IngressLimitsTest, ConnectionsBeyondTheCapAreClosed) {
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(Connect());
  // Each is served: a keep-alive request answered on it proves the server counts it.
  for (int fd : held) {
    const std::string req = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    char buf[64];
    ASSERT_GT(recv(fd, buf, sizeof(buf), 0), 0);
  }
  int extra = Connect();
  EXPECT_TRUE(ClosedWithin(extra, Scaled(absl::Seconds(5))));
  close(extra);
  for (int fd : held) close(fd);
}

TEST_F(IngressLimitsTest, ShutdownEndsARunningStreamAndCancelsItsPrediction) {
  SetTokens(20, 10000);
  absl::Notification started;
  HttpResult r;
  std::thread client([&] {
    HttpCallOptions o;
    o.method = "POST";
    o.body = ChatBody(kModel, true, 10000);
    o.headers = {"Content-Type: application/json"};
    o.on_data = [&](const std::string& so_far) {
      if (absl::StrContains(so_far, "\"content\"") && !started.HasBeenNotified()) {
        started.Notify();
      }
      return true;
    };
    r = HttpCall(port(), "/v1/chat/completions", o);
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(Scaled(absl::Seconds(10))));
  server_->Shutdown(absl::Milliseconds(100));  // grace ends mid-stream
  client.join();
  EXPECT_FALSE(absl::StrContains(r.body, "[DONE]"));
  EXPECT_TRUE(Quiescent()) << "predictions_active stays " << Stat("predictions_active");
  server_.reset();  // nothing calls into the destroyed gateway (asan/tsan runs see it)
}

}  // namespace
}  // namespace lmgate::testutil
