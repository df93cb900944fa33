// Fuzz target: the HTTP ingress's request parsing (services/http_ingress). Two parts:
//   - the OpenAI body parsers (chat, completions, embeddings) on the input as a body, then what a
//     chat/completion body became through services/convert's validation: never a crash; a refusal
//     is INVALID_ARGUMENT with a message, and its OpenAI error object is valid JSON;
//   - the input as raw bytes to a live HttpServer (Beast, small limits and timeouts) on
//     127.0.0.1:0 whose handler answers 200: it answers with an HTTP/1.1 status line or closes,
//     and serves a correct request afterwards (no wedged connection, no crash).
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "services/convert.h"
#include "services/http_ingress/errors.h"
#include "services/http_ingress/http_server.h"
#include "services/http_ingress/openai_request.h"

namespace hi = lmgate::http_ingress;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "http_ingress_fuzzer: invariant violated: %s\n", what);
  std::abort();
}

void CheckRefusal(const absl::Status& st) {
  Check(st.code() == absl::StatusCode::kInvalidArgument, "a refusal that is not INVALID_ARGUMENT");
  Check(!st.message().empty(), "a refusal without a message");
  auto j = nlohmann::json::parse(hi::ErrorJson(st), nullptr, false);
  Check(!j.is_discarded() && j["error"]["message"].is_string(), "an error body that is not JSON");
}

hi::HttpServer& TheServer() {
  static hi::HttpServer* s = [] {
    hi::HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    o.max_body_bytes = 4096;
    o.max_header_bytes = 2048;
    o.max_headers = 16;
    o.read_timeout = absl::Milliseconds(200);  // an input without a complete request costs this
    o.idle_timeout = absl::Milliseconds(200);
    auto server = hi::HttpServer::Create(o, [](std::shared_ptr<hi::Exchange> ex) {
      hi::HttpResponse r;
      r.body = std::to_string(ex->request().body.size());
      ex->Respond(std::move(r));
    });
    Check(server.ok(), "the server does not start");
    (*server)->Start();
    return server->release();
  }();
  return *s;
}

// Sends `bytes`, half-closes, reads until the server closes (bounded by a timeout).
std::string Exchange(int port, absl::string_view bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  Check(fd >= 0, "socket");
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  while (rc != 0 && (errno == EINTR || errno == EALREADY));
  Check(rc == 0 || errno == EISCONN, "connect");
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // the server may close early (over a limit)
    off += static_cast<size_t>(w);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, n);
  }
  close(fd);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  lmgate::services::ValidationLimits limits;
  if (auto chat = hi::ParseChatBody(input, limits.max_json_depth); chat.ok()) {
    auto call = lmgate::services::ToGenerateCall(chat->request, limits);
    if (!call.ok()) CheckRefusal(call.status());
  } else {
    CheckRefusal(chat.status());
  }
  if (auto c = hi::ParseCompletionBody(input, limits.max_json_depth); c.ok()) {
    auto call = lmgate::services::ToGenerateCall(c->request, limits);
    if (!call.ok()) CheckRefusal(call.status());
  } else {
    CheckRefusal(c.status());
  }
  if (auto e = hi::ParseEmbeddingsBody(input, limits.max_json_depth); !e.ok()) {
    CheckRefusal(e.status());
  }

  const int port = TheServer().port();
  if (!input.empty()) {
    const std::string answer = Exchange(port, input);
    if (!answer.empty() && !absl::StartsWith(answer, "HTTP/1.1 ")) {
      std::fprintf(stderr, "answer: %.200s\n", answer.c_str());
      Check(false, "an answer without a status line");
    }
  }
  const std::string ok = Exchange(port, "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
  if (!absl::StartsWith(ok, "HTTP/1.1 200 ")) std::fprintf(stderr, "answer: %.300s\n", ok.c_str());
  Check(absl::StartsWith(ok, "HTTP/1.1 200 "), "the server no longer answers a correct request");
  return 0;
}
