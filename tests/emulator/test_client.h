// Small blocking clients for the emulator's tests: HTTP over libcurl (with streaming and
// connection reuse) and the SDK WebSocket protocol over Boost.Beast (an io thread, the only one
// that touches the stream, queues incoming frames so tests wait on them with deadlines instead of
// sleeping).
//
// Thread-safety: one client per test thread; WsClient::Next() may be called while its io thread
// runs.
#ifndef LMGATE_TESTS_EMULATOR_TEST_CLIENT_H_
#define LMGATE_TESTS_EMULATOR_TEST_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace lmgate::emulator::testing {

struct HttpResult {
  long status = 0;
  std::string body;
  long new_connections = 0;  // CURLINFO_NUM_CONNECTS: 0 when a kept-alive connection was reused
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One curl easy handle: requests made through the same HttpClient reuse its connection.
class HttpClient {
 public:
  explicit HttpClient(int port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResult Get(const std::string& path, const std::string& bearer = "");
  HttpResult Post(const std::string& path, const nlohmann::json& body,
                  const std::string& bearer = "");
  // POSTs `body` as it is (bodies that are no JSON, or that nlohmann should not dump).
  HttpResult PostText(const std::string& path, const std::string& body);
  // Streams the response; `on_data` gets every received piece and returns false to abort the
  // transfer (the connection is closed, like a client going away).
  HttpResult PostStream(const std::string& path, const nlohmann::json& body,
                        const std::function<bool(const std::string&)>& on_data);

 private:
  HttpResult Perform(const std::string& method, const std::string& path, const std::string& body,
                     const std::string& bearer,
                     const std::function<bool(const std::string&)>* on_data);
  int port_;
  void* curl_;
};

// Splits an SSE body into events: each {"event": name or "", "data": json or string}.
std::vector<nlohmann::json> ParseSse(const std::string& body);

class WsClient {
 public:
  // Connects to ws://127.0.0.1:port/<ns>. Does not authenticate.
  static absl::StatusOr<std::unique_ptr<WsClient>> Connect(int port, const std::string& ns);
  ~WsClient();

  void Send(const nlohmann::json& frame);
  // Sends `text` as one text frame, as it is.
  void SendText(const std::string& text);
  // Next frame, or nullopt on timeout / closed socket. Timeouts here and below are stretched by
  // LMGATE_TEST_TIME_SCALE (tests/util/time_scale.h).
  std::optional<nlohmann::json> Next(absl::Duration timeout = absl::Seconds(10));
  // True once the server closed the socket (after all frames were read with Next()).
  bool WaitClosed(absl::Duration timeout = absl::Seconds(10));
  // Closes the TCP connection without a close handshake.
  void Drop();

  // Sends the auth packet and returns the single reply frame.
  nlohmann::json Auth(const std::string& id = "guest:test", const std::string& passkey = "pass");
  // rpcCall with the next id; returns the rpcResult / rpcError frame for it.
  nlohmann::json Rpc(const std::string& endpoint,
                     const nlohmann::json& parameter = nlohmann::json());
  // channelCreate with `channel_id`; returns every frame of that channel up to and including
  // channelClose / channelError. `on_message` sees each channelSend message and may send frames.
  std::vector<nlohmann::json> Channel(
      const std::string& endpoint, int64_t channel_id, const nlohmann::json& creation,
      const std::function<void(const nlohmann::json&)>& on_message = nullptr);
  int64_t next_id() { return next_id_++; }

 private:
  struct Impl;
  explicit WsClient(std::unique_ptr<Impl> impl);
  void ReadNext();  // on the io thread: reads one frame, then the next

  std::unique_ptr<Impl> impl_;
  std::thread reader_;
  absl::Mutex send_mu_;
  absl::Mutex mu_;
  std::deque<nlohmann::json> frames_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_id_ = 0;
};

// Polls `predicate` until it holds or `timeout` passes (for state with no notification hook, such
// as idle-TTL expiry). Returns the last value. `timeout` is stretched by LMGATE_TEST_TIME_SCALE.
bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout = absl::Seconds(10));

}  // namespace lmgate::emulator::testing

#endif  // LMGATE_TESTS_EMULATOR_TEST_CLIENT_H_
