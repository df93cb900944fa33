// The emulator's network front: one TCP port serving HTTP/1.1 (keep-alive, chunked SSE flushed per
// event) and the SDK WebSocket namespaces, like LM Studio. Wraps Boost.Beast; this header does not
// include it.
//
// Ownership: the Server borrows `host`, `auth` and `api`, which must outlive it.
// Thread-safety: port() any time; Restart() and Shutdown() from any thread except the Server's own
// I/O threads' handlers.
#ifndef LMGATE_TESTS_EMULATOR_SERVER_H_
#define LMGATE_TESTS_EMULATOR_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/emulator/http_api.h"
#include "tests/emulator/model_host.h"
#include "tests/emulator/sdk_session.h"

namespace lmgate::emulator {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = pick a free port
  int io_threads = 2;
  SdkServerInfo sdk_info;
  FrameLog* frames = nullptr;  // WebSocket upgrades and frames are recorded here (may be null)
};

class Server {
 public:
  // Binds and starts serving before returning.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options, Host* host,
                                                        SdkAuthenticator* auth, HttpApi* api);
  ~Server();  // Shutdown()

  int port() const;
  // Fault injection ("LM Studio restarts"): closes the listening socket at once (new connections
  // are refused), optionally drops every open connection, and listens again on the same port after
  // `ms` milliseconds.
  void Restart(int64_t ms, bool drop_existing);
  // Stops accepting and closes every connection; I/O threads keep running so work that is still
  // finishing can post to them harmlessly. Idempotent.
  void Close();
  // Close(), then stops and joins the I/O threads. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_SERVER_H_
