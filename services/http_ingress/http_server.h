// HttpServer: a small HTTP/1.1 server (Boost.Beast, already lmgate's dependency through the
// emulator and the sdk_ws driver) with the limits a public port needs, and no knowledge of
// OpenAI or of lmgate's core: it parses requests and hands each to one Handler with an Exchange
// to answer through.
//
// Limits (HttpServerOptions; config http.*, deploy/CONFIG.md): the request body (413), the
// header block's bytes and field count (431), open connections (beyond: closed when accepted),
// the time a whole request (headers and body) may take to arrive once its first byte did
// (slow clients are closed), the idle time between keep-alive requests, and how long one write
// may stay unread and how many bytes may wait behind it (a stalled SSE reader is closed, which
// reaches the handler as Exchange::OnClose).
//
// Threading: `threads` I/O threads run the connections; every connection is served on its own
// strand. Handlers run on an I/O thread and must not block (blocking work goes to a worker
// pool). Exchange methods are thread-safe and may be called from any thread, also after the
// connection closed (then they do nothing). Start() once, then StopAccepting() and Stop(),
// in that order (the destructor runs what is left).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_HTTP_SERVER_H_
#define LMGATE_SERVICES_HTTP_INGRESS_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::http_ingress {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free port
  int threads = 2;
  size_t max_body_bytes = size_t{4} << 20;
  size_t max_header_bytes = 16 << 10;  // request line + header fields
  int max_headers = 100;
  int max_connections = 256;
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_stall = absl::Seconds(30);
  size_t max_pending_bytes = size_t{1} << 20;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query
  std::string query;   // after '?', "" without
  Headers headers;     // names lower-cased, in arrival order
  std::string body;
  std::string peer;    // as gRPC writes peers: "ipv4:127.0.0.1:5555", "ipv6:%5B::1%5D:5555"
  // The first field named `name` (lower case), "" without one.
  absl::string_view Header(absl::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

class Connection;
struct ServerShared;

// One request and its answer: either Respond() once, or StartStream() then Write()s then
// EndStream() (chunked transfer). The first of Respond/EndStream counts; later calls are ignored.
class Exchange {
 public:
  Exchange(HttpRequest request, std::weak_ptr<Connection> conn,
           std::shared_ptr<ServerShared> shared);
  ~Exchange();
  const HttpRequest& request() const { return request_; }

  void Respond(HttpResponse response);
  // Sends the status line and headers of a streamed answer (Transfer-Encoding: chunked).
  void StartStream(int status, const std::string& content_type, Headers headers);
  // One chunk; false once the connection is gone or the client fell too far behind (the
  // connection is then closed and OnClose runs).
  bool Write(std::string data);
  void EndStream();
  // `fn` runs once if the connection closes (client gone, timeout, shutdown) before the answer
  // ended; at once if it already did. Runs on an I/O thread or inside this call; must not block.
  void SetOnClose(std::function<void()> fn);
  bool finished() const { return finished_.load(); }

 private:
  friend class Connection;
  void Closed();  // the connection went away
  const HttpRequest request_;
  const std::weak_ptr<Connection> conn_;
  const std::shared_ptr<ServerShared> shared_;
  std::atomic<bool> finished_{false};
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_close_ ABSL_GUARDED_BY(mu_);
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

class HttpServer {
 public:
  // Binds (UNAVAILABLE naming the address when in use; INVALID_ARGUMENT for a bad one) but
  // accepts nothing before Start().
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(HttpServerOptions options,
                                                            Handler handler);
  ~HttpServer();
  int port() const { return port_; }
  int connections() const { return connections_->load(); }
  // Answers in progress (handed to the handler, not yet ended nor closed).
  int active() const { return active_->load(); }

  void Start();
  // Closes the listening socket and idle keep-alive connections; running exchanges go on and
  // their connections close after their answer.
  void StopAccepting();
  // Waits until no exchange is active or `deadline`, then closes every connection (OnClose of
  // what still runs), stops and joins the I/O threads.
  void Stop(absl::Time deadline);

  struct Impl;

 private:
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::shared_ptr<std::atomic<int>> connections_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> active_ = std::make_shared<std::atomic<int>>(0);
};

// The status line's reason phrase for `status` ("Not Found").
absl::string_view ReasonPhrase(int status);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_HTTP_SERVER_H_
