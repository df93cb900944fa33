// Connection: lmgate's LM Studio SDK WebSocket client for one host (protocol reference §1.1-1.3).
//
// One persistent, authenticated WebSocket per namespace (llm, embedding, system, repository),
// opened lazily on the first call for it and shared by every concurrent rpc call and channel of
// that namespace (per-socket id counters; calls and channels in separate maps). All socket work
// runs on one io_context thread owned by the Connection ("the io thread"); every callback below
// runs there and must not block.
//
// Failure model:
// - A lost socket fails every call and channel in flight on it with UNAVAILABLE; nothing is ever
//   replayed. The next call reconnects at once.
// - A failed connection attempt (refused, timed out, handshake or auth rejected) fails the calls
//   waiting for it and starts an exponential backoff with jitter: calls arriving before the backoff
//   expires fail at once with the last error (UNAVAILABLE, or UNAUTHENTICATED with the host's text)
//   instead of opening a new socket each — no reconnect storm.
//
// Thread-safety: all public methods are thread-safe. Shutdown() (and the destructor) fails
// everything still in flight (UNAVAILABLE), closes the sockets and joins the io thread, so no
// callback runs after it returns; it must not run on the io thread (i.e. not inside a callback).
// After it, StartCall/OpenChannel complete at once (inline, UNAVAILABLE) and Connect fails.
#ifndef LMGATE_BACKENDS_SDK_WS_CONNECTION_H_
#define LMGATE_BACKENDS_SDK_WS_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/sdk_ws/protocol.h"

namespace lmgate::backends::sdk_ws {

struct RpcRequest {
  Namespace ns = Namespace::kSystem;
  std::string endpoint;
  std::optional<Json> parameter;  // nullopt: the key is absent (void parameter)
};

// Receives one channel's traffic, on the io thread.
class ChannelObserver {
 public:
  virtual ~ChannelObserver() = default;
  // Each channelSend message, in order. `cancel_reason` is OK, or the reason given to
  // Channel::Cancel() (DEADLINE_EXCEEDED when the channel's deadline passed) once cancelled; the
  // host keeps sending until it has stopped (a prediction ends with success/userStopped).
  virtual void OnMessage(const Json& message, const absl::Status& cancel_reason) = 0;
  // Exactly once, after the last OnMessage: OK on channelClose, the host's error on channelError,
  // UNAVAILABLE when the socket is lost. Once cancelled, always the cancel reason — also when the
  // host has not closed the channel within Options::cancel_grace (later messages are dropped).
  virtual void OnClose(absl::Status status) = 0;
};

// Handle of an open channel. Thread-safe; outliving the Connection is harmless (calls no-op).
class Channel {
 public:
  virtual ~Channel() = default;
  // Sends a channelSend message; dropped once the channel is closed.
  virtual void Send(Json message) = 0;
  // Asks the host to stop: sends {"type":"cancel"} once (later calls are no-ops) and arms the
  // cancel_grace timer. OnClose then reports `reason`.
  virtual void Cancel(absl::Status reason) = 0;
};

// An rpc call in flight. Abort() completes it now with `why` (if it has not completed yet); a
// late answer from the host is dropped. Thread-safe.
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual void Abort(absl::Status why) = 0;
};

// Counters for tests and metrics; monotonic.
struct ConnectionStats {
  int64_t connects_started = 0;
  int64_t connects_succeeded = 0;  // authenticated sockets
  int64_t sockets_lost = 0;        // authenticated sockets that went away
};

class Connection {
 public:
  struct Options {
    std::string host;         // name or IP (IPv6 without brackets)
    int port = 1234;
    std::string path_prefix;  // "" or "/proxy/path" (no trailing slash)
    ClientIdentity identity;
    absl::Duration connect_timeout = absl::Seconds(3);  // resolve + TCP + upgrade + auth
    // An open socket that receives nothing (not even a pong to our pings) for this long is lost.
    absl::Duration idle_timeout = absl::Seconds(120);
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    // How long a cancelled channel may take to close before it is failed locally.
    absl::Duration cancel_grace = absl::Seconds(5);
    size_t max_message_bytes = size_t{256} << 20;
  };

  // INVALID_ARGUMENT for an empty host or a bad port. Starts the io thread; connects nothing.
  static absl::StatusOr<std::unique_ptr<Connection>> Create(Options options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  using RpcCallback = std::function<void(absl::StatusOr<Json>)>;
  // Sends an rpcCall. `done` runs exactly once on the io thread with the result (null Json for a
  // void result), the host's rpcError, UNAVAILABLE/UNAUTHENTICATED from the socket, or the
  // status given to PendingCall::Abort().
  std::shared_ptr<PendingCall> StartCall(RpcRequest request, RpcCallback done);

  // Blocking: sends every request at once (pipelined) and waits for all results, in request
  // order. Stops at the first error, at `deadline` (DEADLINE_EXCEEDED) or when `cancel` fires
  // (CANCELLED), aborting the calls still in flight.
  absl::StatusOr<std::vector<Json>> CallAll(std::vector<RpcRequest> requests, absl::Time deadline,
                                            const std::shared_ptr<CancelToken>& cancel);
  absl::StatusOr<Json> Call(RpcRequest request, absl::Time deadline,
                            const std::shared_ptr<CancelToken>& cancel);

  // Opens a channel. `observer` receives its messages and exactly one OnClose (possibly with an
  // error before anything was sent, e.g. when the host is unreachable). When `deadline` passes
  // the channel is cancelled with DEADLINE_EXCEEDED.
  std::shared_ptr<Channel> OpenChannel(Namespace ns, std::string endpoint, Json creation_parameter,
                                       absl::Time deadline,
                                       std::shared_ptr<ChannelObserver> observer);

  // Blocking: OK once the namespace's socket is open and authenticated (connecting if needed).
  absl::Status Connect(Namespace ns, absl::Time deadline);

  ConnectionStats stats() const;

  // See the thread-safety note. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Connection(std::shared_ptr<Impl> impl);
  // Refuses further posts and queues the handler that fails everything and stops the io thread.
  void StopPosting();
  std::shared_ptr<Impl> impl_;
};

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_CONNECTION_H_
