// Listener: lmgate's own listening socket and accept loop in front of the gRPC server, which gets
// each accepted connection through its external-connection acceptor.
//
// Why not gRPC's listener: in gRPC 1.51 (iomgr tcp_server_posix) an accept4() failure other than
// EAGAIN — EMFILE when idle connections used up the fds — logs "Failed accept4" once and stops
// that listener for good while the process stays alive; and it binds with SO_REUSEPORT, so a
// second lmgate on the same address starts and takes half of the connections. This one:
//   - binds without SO_REUSEPORT: an address in use fails Bind() (and so the start);
//   - keeps accepting whatever accept4() says: on EMFILE/ENFILE it spends a reserved fd to accept
//     and close the pending connection (the client sees the close at once instead of hanging in
//     the backlog), and accepts normally again as soon as descriptors are free;
//   - caps the connections it has handed to gRPC (and that are still open) at max_connections;
//     beyond it a new connection is closed as soon as it is accepted.
// Connections are counted by (fd, inode) of the sockets handed over: gRPC closes them itself, and
// an fd whose inode changed or that is closed no longer counts.
//
// Thread-safe. Bind(), then Start() once, then Stop() (idempotent; also run by the destructor).
#ifndef LMGATE_SERVICES_LISTENER_H_
#define LMGATE_SERVICES_LISTENER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/server_builder.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::services {

class Listener {
 public:
  // Binds `address` (host:port; port 0 picks one; a wildcard host listens on IPv6 and IPv4).
  // UNAVAILABLE naming the address when it is in use or not local.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(const std::string& address);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int port() const { return port_; }
  // Starts the accept thread; every accepted connection goes to `acceptor` (which must outlive
  // Stop()) while fewer than `max_connections` handed-over connections are open.
  void Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
             int max_connections);
  // Stops accepting and closes the listening sockets (connections already handed over stay).
  void Stop();

  // Open connections handed to gRPC.
  int connections();
  // Connections closed at once: over the cap, or while out of file descriptors.
  int64_t refused() const;
  // The accept loop went round within `within` (it wakes at least every 500 ms).
  bool Alive(absl::Duration within) const;

 private:
  Listener() = default;
  void Loop();
  // Accepts until the backlog is empty (true) or fds ran out with no reserve to refuse with.
  bool AcceptAll(int listen_fd);
  // Accepts and closes one pending connection with the reserved fd; false if it could not.
  bool RefuseOneWithReserve(int listen_fd);
  bool Admit(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  int port_ = 0;
  std::vector<int> listen_fds_;
  int wake_fd_ = -1;     // eventfd: Stop() wakes the loop
  int reserve_fd_ = -1;  // /dev/null, given up to refuse a connection when out of fds
  int max_connections_ = 0;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_round_ ABSL_GUARDED_BY(mu_);
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_refusal_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::map<int, std::pair<dev_t, ino_t>> handed_ ABSL_GUARDED_BY(mu_);  // fd -> socket identity
};

// Raises the soft RLIMIT_NOFILE to the hard limit (systemd and containers often start processes
// with a soft 1024); returns the soft limit in force afterwards.
int RaiseFileLimit();
// The soft RLIMIT_NOFILE now.
int FileLimit();
// The connection cap that leaves room under the fd limit for the upstream connections, the
// worker threads' files and gRPC's own descriptors: min(configured, soft limit - reserve).
int EffectiveMaxConnections(int configured, int fd_limit);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_LISTENER_H_
