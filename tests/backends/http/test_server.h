// A tiny HTTP/1.1 server on 127.0.0.1:<ephemeral port> for hermetic tests of the HTTP layer.
// Plain sockets, one thread per connection, keep-alive, Content-Length request bodies,
// Content-Length or chunked answers, and the faults tests need (close without answer, stall,
// abort mid-stream, watch for the client closing).
//
// Thread-safe. The handler runs on the connection's thread, one request at a time per
// connection; it may block (e.g. on a Notification the test releases) but must return before the
// server is destroyed. A handler that returns without answering makes the server close the
// connection (the client sees an empty reply).
#ifndef LMGATE_TESTS_BACKENDS_HTTP_TEST_SERVER_H_
#define LMGATE_TESTS_BACKENDS_HTTP_TEST_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::backends::http::testing {

struct TestRequest {
  std::string method;
  std::string path;  // with query string, if any
  std::map<std::string, std::string> headers;  // keys lower-case
  std::string body;
  int connection = 0;  // 1-based index of the TCP connection it came on
};

// The answering side of one request. Used only from the handler's thread.
class TestConnection {
 public:
  explicit TestConnection(int fd) : fd_(fd) {}

  // A complete answer with Content-Length; the connection stays open for the next request.
  void Respond(int status, absl::string_view content_type, absl::string_view body);
  // A chunked answer: StartChunked, WriteChunk*, EndChunked.
  void StartChunked(int status, absl::string_view content_type);
  // False once the client is gone.
  bool WriteChunk(absl::string_view data);
  void EndChunked();
  // Writes raw bytes (e.g. half a status line).
  bool WriteRaw(absl::string_view bytes);
  // Closes the connection at once (no more requests on it).
  void Abort();
  // Waits until the client closes its side or `timeout` passes; true if it closed.
  bool WaitForPeerClose(absl::Duration timeout);

  bool answered() const { return answered_; }
  bool aborted() const { return aborted_; }

 private:
  int fd_;
  bool answered_ = false;
  bool aborted_ = false;
};

class TestServer {
 public:
  using Handler = std::function<void(const TestRequest&, TestConnection&)>;

  explicit TestServer(Handler handler);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const;
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  // The requests received so far, in order.
  std::vector<TestRequest> received() const;

 private:
  void AcceptLoop();
  void Serve(int fd, int index);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread accept_thread_;
  mutable absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<TestRequest> received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::backends::http::testing

#endif  // LMGATE_TESTS_BACKENDS_HTTP_TEST_SERVER_H_
