// A real redis-server (Debian's, 7.0) for tests, on a free loopback port, without persistence.
// The cluster tests use it the way the emulator stands in for LM Studio: a process of its own,
// stopped with the fixture. Restart() keeps the port (state is lost, as in a real Redis restart);
// Pause()/Resume() freeze it (SIGSTOP/SIGCONT) to test timeouts against an unresponsive server.
#ifndef LMGATE_TESTS_UTIL_REDIS_SERVER_H_
#define LMGATE_TESTS_UTIL_REDIS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/bench/subprocess.h"

namespace lmgate::testutil {

class RedisServer {
 public:
  // `extra_args` are redis-server options, e.g. {"--requirepass", "secret"}. Looks for
  // redis-server in /usr/bin and on PATH (deploy/setup.sh installs it).
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(std::vector<std::string> extra_args = {});
  ~RedisServer();

  int port() const { return port_; }
  std::string url() const;  // redis://127.0.0.1:<port>
  // Stops the server and starts a fresh one on the same port (all data gone).
  absl::Status Restart();
  void Stop();
  void Pause();
  void Resume();

 private:
  RedisServer() = default;
  absl::Status Launch();

  std::string binary_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  std::unique_ptr<bench::Subprocess> process_;
};

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_UTIL_REDIS_SERVER_H_
