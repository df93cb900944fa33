#include "tests/bench/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace lmgate::bench {
namespace {

constexpr size_t kHeadLines = 100;
constexpr size_t kTailLines = 40;

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(std::vector<std::string> argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  // Nothing else of ours reaches the child: Boost.Asio opens sockets without FD_CLOEXEC, and an
  // inherited copy of the in-process emulator's listening socket kept its port bound after the
  // emulator closed it (a simulated host restart could then never listen again).
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->started_ = absl::Now();
  const int rc = posix_spawn(&p->pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return absl::NotFoundError(absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
  }
  Subprocess* raw = p.get();
  p->drain_ = std::thread([raw, fd = fds[0]] { raw->Drain(fd); });
  return p;
}

void Subprocess::Drain(int fd) {
  std::string partial;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, nl);
      partial.erase(0, nl + 1);
      absl::MutexLock lock(&mu_);
      if (head_.size() < kHeadLines) head_.push_back(line);
      tail_.push_back(std::move(line));
      if (tail_.size() > kTailLines) tail_.pop_front();
    }
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  eof_ = true;
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& needle,
                                                    absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  std::string found;
  size_t scanned = 0;
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; scanned < head_.size(); ++scanned) {
      if (absl::StrContains(head_[scanned], needle)) {
        found = head_[scanned];
        return true;
      }
    }
    return eof_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("no line with \"", needle, "\" within ",
                                                    absl::FormatDuration(timeout)));
  }
  if (found.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the process closed stdout (exited?) before printing \"", needle, "\""));
  }
  return found;
}

std::string Subprocess::Tail() const {
  absl::MutexLock lock(&mu_);
  return absl::StrJoin(tail_, "\n");
}

int Subprocess::Stop(absl::Duration grace) {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    const absl::Time until = absl::Now() + grace;
    int status = 0;
    pid_t r = 0;
    while ((r = waitpid(pid_, &status, WNOHANG)) == 0 && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (r == 0) {
      kill(pid_, SIGKILL);
      r = waitpid(pid_, &status, 0);
    }
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }
  if (drain_.joinable()) drain_.join();
  return exit_code_;
}

Subprocess::~Subprocess() { Stop(absl::Seconds(10)); }

namespace {

absl::StatusOr<ProcUsage> ReadProcUsageOnce(pid_t pid) {
  ProcUsage u;
  const std::string dir = absl::StrCat("/proc/", pid);
  std::ifstream status(dir + "/status");
  if (!status) return absl::NotFoundError(absl::StrCat("no ", dir));
  std::string line;
  while (std::getline(status, line)) {
    long long kb = 0;
    if (sscanf(line.c_str(), "VmRSS: %lld kB", &kb) == 1) u.rss_mb = kb / 1024.0;
    if (sscanf(line.c_str(), "VmHWM: %lld kB", &kb) == 1) u.peak_rss_mb = kb / 1024.0;
    int threads = 0;
    if (sscanf(line.c_str(), "Threads: %d", &threads) == 1) u.threads = threads;
  }
  if (u.rss_mb <= 0) return absl::InternalError(absl::StrCat("no VmRSS in ", dir, "/status"));
  std::ifstream stat(dir + "/stat");
  std::stringstream ss;
  ss << stat.rdbuf();
  const std::string s = ss.str();
  // Fields after the parenthesised command (which may contain spaces): state is field 3.
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return absl::InternalError("unparsable /proc/pid/stat");
  std::vector<std::string> f = absl::StrSplit(s.substr(close + 2), ' ');
  if (f.size() < 13) return absl::InternalError("short /proc/pid/stat");
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  u.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tick;  // utime, stime (fields 14, 15)
  if (DIR* d = opendir((dir + "/fd").c_str())) {
    while (struct dirent* e = readdir(d)) u.fds += e->d_name[0] != '.';
    closedir(d);
  }
  if (DIR* d = opendir((dir + "/task").c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream ts(absl::StrCat(dir, "/task/", e->d_name, "/status"));
      while (std::getline(ts, line)) {
        long long n = 0;
        if (sscanf(line.c_str(), "voluntary_ctxt_switches: %lld", &n) == 1 ||
            sscanf(line.c_str(), "nonvoluntary_ctxt_switches: %lld", &n) == 1) {
          u.context_switches += n;
        }
      }
    }
    closedir(d);
  }
  return u;
}

}  // namespace

absl::StatusOr<ProcUsage> ReadProcUsage(pid_t pid) {
  // Under heavy load one read failed (the report showed 0 MB and a negative CPU delta, the
  // zeros of a failed read): a failed or incomplete read is retried a few times.
  absl::StatusOr<ProcUsage> u;
  for (int attempt = 0; attempt < 5; ++attempt) {
    u = ReadProcUsageOnce(pid);
    if (u.ok() || absl::IsNotFound(u.status())) return u;
  }
  return u;
}

}  // namespace lmgate::bench
