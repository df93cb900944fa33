#include "services/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lmgate::services {
namespace {

constexpr int kBacklog = 1024;
constexpr int kPollMs = 500;
constexpr int kBackoffMs = 100;
// Warnings about refused connections: at most one per this interval (a flood must not flood the log).
constexpr absl::Duration kRefusalLogInterval = absl::Seconds(10);

// Owns an fd until released.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

absl::Status BindError(const std::string& address, int err) {
  return absl::UnavailableError(absl::StrCat(
      "cannot listen on ", address, ": ", strerror(err),
      err == EADDRINUSE ? " (another process, maybe another lmgate, listens there)"
                        : (err == EADDRNOTAVAIL ? " (not an address of this host)" : "")));
}

// A listening socket on `addr`; IPv6 wildcards accept IPv4 too.
absl::StatusOr<int> ListenOn(const sockaddr* addr, socklen_t len, const std::string& address) {
  Fd fd(socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return BindError(address, errno);
  const int one = 1, zero = 0;
  // SO_REUSEADDR only lets a restarted lmgate bind while old connections sit in TIME_WAIT; without
  // SO_REUSEPORT a second listener on the address fails with EADDRINUSE.
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (addr->sa_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd.get(), addr, len) != 0 || listen(fd.get(), kBacklog) != 0) {
    return BindError(address, errno);
  }
  return fd.release();
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen: \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::unique_ptr<Listener> l(new Listener());
  auto add = [&](absl::StatusOr<int> fd) -> absl::Status {
    if (!fd.ok()) return fd.status();
    l->listen_fds_.push_back(*fd);
    if (l->port_ == 0) l->port_ = BoundPort(*fd);
    return absl::OkStatus();
  };
  if (host.empty() || host == "*" || host == "0.0.0.0" || host == "::") {
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_any;
    any6.sin6_port = htons(static_cast<uint16_t>(port));
    auto fd6 = ListenOn(reinterpret_cast<sockaddr*>(&any6), sizeof(any6), address);
    if (fd6.ok() || host == "::") {
      if (auto st = add(fd6); !st.ok()) return st;
    } else {  // no IPv6 on this host
      sockaddr_in any4{};
      any4.sin_family = AF_INET;
      any4.sin_addr.s_addr = htonl(INADDR_ANY);
      any4.sin_port = htons(static_cast<uint16_t>(port));
      if (auto st = add(ListenOn(reinterpret_cast<sockaddr*>(&any4), sizeof(any4), address));
          !st.ok())
        return st;
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), "0", &hints, &res); rc != 0 || res == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", address, ": ", gai_strerror(rc)));
    }
    // Every address of the name (localhost: 127.0.0.1 and ::1), on one port.
    absl::Status st;
    for (addrinfo* a = res; a != nullptr && st.ok(); a = a->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
      const uint16_t p = htons(static_cast<uint16_t>(l->port_ != 0 ? l->port_ : port));
      if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = p;
      if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = p;
      st = add(ListenOn(reinterpret_cast<sockaddr*>(&ss), a->ai_addrlen, address));
    }
    freeaddrinfo(res);
    if (!st.ok()) return st;
  }
  l->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  l->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (l->wake_fd_ < 0) return absl::ResourceExhaustedError("listen: eventfd failed");
  return l;
}

Listener::~Listener() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

void Listener::Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
                     int max_connections) {
  acceptor_ = std::move(acceptor);
  max_connections_ = std::max(1, max_connections);
  {
    absl::MutexLock lock(&mu_);
    last_round_ = absl::Now();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Listener::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // The counter cannot overflow from one write; the loop also checks stopping_ every round.
  }
  if (thread_.joinable()) thread_.join();
  // New connections are refused by the kernel from here on.
  for (int fd : listen_fds_) close(fd);
  listen_fds_.clear();
}

void Listener::Loop() {
  std::vector<pollfd> fds;
  for (int fd : listen_fds_) fds.push_back({fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  bool backoff = false;
  for (;;) {
    // Out of fds with no reserve left to refuse with: the listening sockets stay readable, so
    // wait on the wake fd alone for a moment instead of spinning.
    const int ready = backoff ? poll(&fds.back(), 1, kBackoffMs)
                              : poll(fds.data(), fds.size(), kPollMs);
    {
      absl::MutexLock lock(&mu_);
      last_round_ = absl::Now();
      if (stopping_) return;
    }
    if (!backoff && ready <= 0) continue;
    backoff = false;
    for (size_t i = 0; i + 1 < fds.size(); ++i) backoff |= !AcceptAll(fds[i].fd);
  }
}

bool Listener::AcceptAll(int listen_fd) {
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:  // a firewall rule refused it
          continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          if (RefuseOneWithReserve(listen_fd)) continue;
          return false;
        default:  // EAGAIN: the backlog is empty
          return true;
      }
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bool admitted;
    {
      absl::MutexLock lock(&mu_);
      admitted = Admit(fd);
    }
    if (!admitted) {
      close(fd);
      continue;
    }
    // gRPC owns the fd from here. (It would drop, not close, a connection handed over after the
    // server shut down: Stop() ends this loop before LmgateServer shuts the server down.)
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
    p.listener_fd = listen_fd;
    p.fd = fd;
    acceptor_->HandleNewConnection(&p);
  }
}

bool Listener::RefuseOneWithReserve(int listen_fd) {
  const int err = errno;
  absl::MutexLock lock(&mu_);
  ++refused_;
  const bool log = absl::Now() - last_refusal_log_ >= kRefusalLogInterval;
  if (log) last_refusal_log_ = absl::Now();
  if (log) {
    spdlog::warn("accept: {} ({} connections open): refusing new connections until descriptors "
                 "are free; {} refused so far", strerror(err), handed_.size(), refused_);
  }
  if (reserve_fd_ < 0) {
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return false;
  }
  close(reserve_fd_);
  reserve_fd_ = -1;
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && reserve_fd_ >= 0;
}

bool Listener::Admit(int fd) {
  if (static_cast<int>(handed_.size()) >= max_connections_) Prune();
  if (static_cast<int>(handed_.size()) >= max_connections_) {
    ++refused_;
    if (absl::Now() - last_refusal_log_ >= kRefusalLogInterval) {
      last_refusal_log_ = absl::Now();
      spdlog::warn("{} connections open (limits.max_connections): refusing new connections; {} "
                   "refused so far", handed_.size(), refused_);
    }
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  handed_[fd] = {st.st_dev, st.st_ino};
  return true;
}

void Listener::Prune() {
  for (auto it = handed_.begin(); it != handed_.end();) {
    struct stat st {};
    const bool same = fstat(it->first, &st) == 0 && S_ISSOCK(st.st_mode) &&
                      st.st_dev == it->second.first && st.st_ino == it->second.second;
    it = same ? std::next(it) : handed_.erase(it);
  }
}

int Listener::connections() {
  absl::MutexLock lock(&mu_);
  Prune();
  return static_cast<int>(handed_.size());
}

int64_t Listener::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

bool Listener::Alive(absl::Duration within) const {
  absl::MutexLock lock(&mu_);
  return stopping_ || absl::Now() - last_round_ <= within;
}

int FileLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  return static_cast<int>(std::min<rlim_t>(r.rlim_cur, 1 << 20));  // RLIM_INFINITY is huge too
}

int RaiseFileLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  return FileLimit();
}

int EffectiveMaxConnections(int configured, int fd_limit) {
  // An eighth of the descriptors (at least 64, at most 1024) for everything but client
  // connections: upstream sockets, the worker threads' files, gRPC's wakeup fds.
  const int reserve = std::clamp(fd_limit / 8, 64, 1024);
  return std::max(1, std::min(configured, fd_limit - reserve));
}

}  // namespace lmgate::services
