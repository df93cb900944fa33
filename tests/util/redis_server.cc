#include "tests/util/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/util/time_scale.h"

namespace lmgate::testutil {
namespace {

std::string FindRedisServer() {
  if (access("/usr/bin/redis-server", X_OK) == 0) return "/usr/bin/redis-server";
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      std::string p = absl::StrCat(dir, "/redis-server");
      if (access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
}

// A port the kernel just handed out on 127.0.0.1 (free unless another process takes it before
// redis-server binds it; Start() tries again then).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(std::vector<std::string> extra_args) {
  std::unique_ptr<RedisServer> s(new RedisServer());
  s->binary_ = FindRedisServer();
  if (s->binary_.empty()) {
    return absl::FailedPreconditionError(
        "redis-server not found (apt-get install redis-server, or run deploy/setup.sh)");
  }
  s->extra_args_ = std::move(extra_args);
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    s->port_ = FreePort();
    if (s->port_ == 0) return absl::UnavailableError("no free loopback port");
    last = s->Launch();
    if (last.ok()) return s;
  }
  return last;
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> argv = {binary_,        "--port",       absl::StrCat(port_),
                                   "--bind",       "127.0.0.1",    "--save",
                                   "",             "--appendonly", "no",
                                   "--daemonize",  "no",           "--protected-mode",
                                   "no",           "--loglevel",   "notice"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  auto p = bench::Subprocess::Start(argv);
  if (!p.ok()) return p.status();
  auto line = (*p)->WaitForLine("Ready to accept connections", Scaled(absl::Seconds(20)));
  if (!line.ok()) {
    const std::string tail = (*p)->Tail();
    (*p)->Stop(absl::Seconds(5));
    return absl::UnavailableError(
        absl::StrCat("redis-server on port ", port_, " did not start: ", line.status().message(),
                     "\n", tail));
  }
  process_ = *std::move(p);
  return absl::OkStatus();
}

RedisServer::~RedisServer() { Stop(); }

std::string RedisServer::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

void RedisServer::Stop() {
  if (!process_) return;
  Resume();  // a paused server would not act on SIGTERM
  process_->Stop(absl::Seconds(10));
  process_.reset();
}

absl::Status RedisServer::Restart() {
  Stop();
  // The port was ours a moment ago; retry while the kernel still holds it.
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    last = Launch();
    if (last.ok()) return last;
  }
  return last;
}

void RedisServer::Pause() {
  if (process_) kill(process_->pid(), SIGSTOP);
}

void RedisServer::Resume() {
  if (process_) kill(process_->pid(), SIGCONT);
}

}  // namespace lmgate::testutil
