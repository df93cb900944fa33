// FakeHost: a tiny scripted SDK WebSocket server for the sdk_ws driver's tests (127.0.0.1, port 0).
// It performs the auth handshake (§1.2) and hands every later frame to a test-provided script,
// which answers through the Session. Everything else (which endpoints exist, how they answer) is
// up to the script, so tests can reproduce exact wire sequences and faults the full emulator
// does not offer (ignored cancels, malformed frames, keepAlive pings).
//
// Thread-safety: the script runs on the fake host's own io thread; every public method is
// thread-safe.
#ifndef LMGATE_TESTS_BACKENDS_SDK_WS_FAKE_HOST_H_
#define LMGATE_TESTS_BACKENDS_SDK_WS_FAKE_HOST_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace lmgate::backends::sdk_ws::testing {

using Json = nlohmann::json;

class FakeSession {
 public:
  virtual ~FakeSession() = default;
  virtual void Send(const Json& frame) = 0;        // queued, in order; no-op once closed
  virtual void SendRaw(std::string text) = 0;      // any text frame (malformed on purpose)
  virtual void Drop() = 0;                         // abrupt TCP close, no close frame
  virtual const std::string& path() const = 0;     // "/llm", "/system", ...
};

class FakeHost {
 public:
  // Called for every frame after a successful handshake. A script may keep sessions to answer
  // later, but must release them before the FakeHost is destroyed.
  using Script = std::function<void(const std::shared_ptr<FakeSession>&, const Json& frame)>;
  // Returns the error text to reject an auth packet, or nullopt to accept it.
  using AuthCheck = std::function<std::optional<std::string>(const Json& auth)>;

  explicit FakeHost(Script script, AuthCheck auth = nullptr);
  ~FakeHost();

  int port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  // Sockets that completed the handshake, ever.
  int authenticated_total() const;
  // Sockets that sent an auth packet, ever (accepted or not).
  int auth_attempts() const;
  // Frames received after the handshake, in arrival order (all sockets).
  std::vector<Json> received() const;
  // Drops every open socket.
  void DropAll();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Helpers for scripts.
Json RpcResult(const Json& call, std::optional<Json> result);
Json RpcError(const Json& call, const std::string& title, const std::string& code = "");
Json ChannelSend(const Json& create, Json message);
Json ChannelClose(const Json& create);
Json ChannelError(const Json& create, const std::string& title, const std::string& code = "");
Json Fragment(const std::string& content, const std::string& reasoning = "none");
Json PredictSuccess(const std::string& stop_reason, int predicted_tokens = 1);

}  // namespace lmgate::backends::sdk_ws::testing

#endif  // LMGATE_TESTS_BACKENDS_SDK_WS_FAKE_HOST_H_
