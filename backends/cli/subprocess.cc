#include "backends/cli/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace lmgate::backends::cli {
namespace {

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

absl::StatusOr<Pipe> MakePipe(int flags) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | flags) != 0) return ErrnoError("pipe2", errno);
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// posix_spawn attributes and file actions, destroyed with the object.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout/stderr into the pipes, nothing else inherited; own process
  // group; no blocked signals and default dispositions for the ones a parent commonly changes
  // (an ignored SIGPIPE or SIGTERM would otherwise survive exec).
  absl::Status Configure(int out_fd, int err_fd) {
    int rc = posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, out_fd, STDOUT_FILENO);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, err_fd, STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors other libraries opened without O_CLOEXEC must not leak into the child.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
#endif
    if (rc != 0) return ErrnoError("posix_spawn_file_actions", rc);
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) {
      sigaddset(&defaults, sig);
    }
    rc = posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &defaults);
    if (rc != 0) return ErrnoError("posix_spawnattr", rc);
    return absl::OkStatus();
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

// The started child. Until it is reaped its pid (and process group id) cannot be reused, so
// signalling them only ever reaches this child and its descendants. The destructor kills and
// reaps a child that is still there.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!reaped_) {
      Signal(SIGKILL);
      Reap(/*block=*/true);
    }
  }

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }
  int wait_status() const { return wait_status_; }
  bool status_known() const { return status_known_; }

  void Signal(int sig) {
    if (reaped_) return;
    kill(-pid_, sig);  // the whole group (the child called setpgid(0, 0) before exec)
    kill(pid_, sig);
  }

  // True once the child is reaped (now or before).
  bool Reap(bool block) {
    if (reaped_) return true;
    while (true) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_known_ = true;
        wait_status_ = status;
        return true;
      }
      if (r == 0) return false;
      if (errno == EINTR) continue;
      // ECHILD: someone else reaped it (a SIGCHLD handler with waitpid(-1)); it is gone.
      reaped_ = true;
      return true;
    }
  }

 private:
  const pid_t pid_;
  bool reaped_ = false;
  bool status_known_ = false;
  int wait_status_ = 0;
};

// A pidfd becomes readable when the child exits (Linux >= 5.3); invalid when unsupported.
Fd OpenPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return Fd(static_cast<int>(fd));
#endif
  (void)pid;
  return Fd();
}

// poll() timeout until `deadline`, capped at `cap_ms` (-1 = no cap).
int TimeoutMs(absl::Time deadline, int cap_ms) {
  if (deadline == absl::InfiniteFuture()) return cap_ms;
  double ms = std::ceil(absl::ToDoubleMilliseconds(deadline - absl::Now()));
  int t = ms <= 0 ? 0 : ms >= INT_MAX ? INT_MAX : static_cast<int>(ms);
  return cap_ms < 0 ? t : std::min(t, cap_ms);
}

// Waits until the child exits or `deadline`; true if it exited (and is reaped).
bool WaitForExit(Child& child, const Fd& pidfd, absl::Time deadline) {
  while (!child.Reap(/*block=*/false)) {
    int timeout = TimeoutMs(deadline, pidfd.valid() ? -1 : 10);
    if (timeout == 0 && absl::Now() >= deadline) return false;
    if (pidfd.valid()) {
      pollfd p = {pidfd.get(), POLLIN, 0};
      if (poll(&p, 1, timeout) == 0) return child.Reap(/*block=*/false);
    } else {
      // No pidfd (old kernel): nothing to wait on but time.
      poll(nullptr, 0, timeout);
    }
  }
  return true;
}

std::string Tail(const std::string& text, size_t max = 400) {
  absl::string_view t(text);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.remove_suffix(1);
  if (t.size() > max) return absl::StrCat("...", t.substr(t.size() - max));
  return std::string(t);
}

std::vector<std::string> ChildEnvironment(const ProcessSpec& spec) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    absl::string_view name = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(spec.env.begin(), spec.env.end(),
                                [&](const auto& kv) { return kv.first == name; });
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [name, value] : spec.env) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::StatusOr<std::string> ResolveExecutable(const std::string& program,
                                              const std::string& search_path) {
  if (program.empty()) return absl::NotFoundError("no program given");
  auto check = [](const std::string& path) -> absl::Status {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) {
      return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    }
    if (access(path.c_str(), X_OK) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(path, " is not executable"));
    }
    return absl::OkStatus();
  };
  if (program.find('/') != std::string::npos) {
    absl::Status s = check(program);
    if (!s.ok()) return s;
    return program;
  }
  absl::Status not_executable;
  for (absl::string_view dir : absl::StrSplit(search_path, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    absl::Status s = check(candidate);
    if (s.ok()) return candidate;
    if (absl::IsPermissionDenied(s) && not_executable.ok()) not_executable = s;
  }
  if (!not_executable.ok()) return not_executable;
  // The search path stays out of the message: it describes the server, and the message may reach
  // a client. Callers log it if they need to.
  return absl::NotFoundError(absl::StrCat("`", program, "` was not found on PATH"));
}

absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec) {
  const char* path_env = getenv("PATH");
  absl::StatusOr<std::string> exe =
      ResolveExecutable(spec.program, path_env != nullptr ? path_env : "/usr/bin:/bin");
  if (!exe.ok()) return exe.status();

  absl::StatusOr<Pipe> out = MakePipe(0);
  if (!out.ok()) return out.status();
  absl::StatusOr<Pipe> err = MakePipe(0);
  if (!err.ok()) return err.status();
  // Written by the cancel callback to wake the poll loop.
  absl::StatusOr<Pipe> wake = MakePipe(O_NONBLOCK);
  if (!wake.ok()) return wake.status();

  SpawnSetup setup;
  if (absl::Status s = setup.Configure(out->write.get(), err->write.get()); !s.ok()) return s;
  std::vector<std::string> arg_strings = {*exe};
  arg_strings.insert(arg_strings.end(), spec.args.begin(), spec.args.end());
  std::vector<char*> argv = CStrings(arg_strings);
  std::vector<std::string> env_strings = ChildEnvironment(spec);
  std::vector<char*> envp = CStrings(env_strings);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, exe->c_str(), setup.actions(), setup.attr(), argv.data(), envp.data());
  if (rc != 0) {
    if (rc == ENOENT) return absl::NotFoundError(absl::StrCat(*exe, " does not exist"));
    if (rc == EACCES) return absl::PermissionDeniedError(absl::StrCat(*exe, " is not executable"));
    if (rc == ENOEXEC) {
      return absl::FailedPreconditionError(absl::StrCat(*exe, " is not an executable program"));
    }
    return ErrnoError(absl::StrCat("starting ", *exe), rc);
  }
  Child child(pid);
  out->write.Reset();
  err->write.Reset();
  if (spec.on_started) spec.on_started(pid);
  Fd pidfd = OpenPidfd(pid);

  // Removed (and so no longer running) before `wake` is closed: declared after it.
  struct CancelRegistration {
    std::shared_ptr<CancelToken> token;
    CancelToken::CallbackId id = 0;
    ~CancelRegistration() {
      if (token && id != 0) token->RemoveCallback(id);
    }
  } registration{spec.cancel};
  if (spec.cancel) {
    const int wake_fd = wake->write.get();
    registration.id = spec.cancel->AddCallback([wake_fd] {
      const char byte = 1;
      (void)!write(wake_fd, &byte, 1);  // a full pipe already wakes the loop
    });
  }

  ProcessResult result;
  Fd* streams[2] = {&out->read, &err->read};
  std::string* sinks[2] = {&result.out, &result.err};
  enum class Stop { kNone, kDeadline, kCancelled, kOverflow } stop = Stop::kNone;
  bool exited = false;
  while (true) {
    const bool pipes_open = streams[0]->valid() || streams[1]->valid();
    if (exited && !pipes_open) break;
    // A child that has exited is done: a cancel or deadline racing with its exit is moot.
    if (!exited && spec.cancel && spec.cancel->cancelled()) {
      stop = Stop::kCancelled;
      break;
    }
    if (!exited && absl::Now() >= spec.deadline) {
      stop = Stop::kDeadline;
      break;
    }
    pollfd fds[4];
    int n = 0;
    int stream_slot[2] = {-1, -1};
    for (int i = 0; i < 2; ++i) {
      if (streams[i]->valid()) {
        stream_slot[i] = n;
        fds[n++] = {streams[i]->get(), POLLIN, 0};
      }
    }
    const int wake_slot = n;
    fds[n++] = {wake->read.get(), POLLIN, 0};
    int pid_slot = -1;
    if (!exited && pidfd.valid()) {
      pid_slot = n;
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    // Once the child has exited only what is already in the pipes is read (descendants that
    // inherited them are not waited for). Without a pidfd, exit is noticed by polling.
    int timeout = exited ? 0 : TimeoutMs(spec.deadline, pidfd.valid() || pipes_open ? -1 : 10);
    int ready = poll(fds, n, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll", errno);
    }
    if (ready == 0 && exited) {
      streams[0]->Reset();
      streams[1]->Reset();
      continue;
    }
    for (int i = 0; i < 2 && stop == Stop::kNone; ++i) {
      if (stream_slot[i] < 0 || fds[stream_slot[i]].revents == 0) continue;
      char buffer[65536];
      ssize_t got = read(streams[i]->get(), buffer, sizeof(buffer));
      if (got > 0) {
        if (sinks[i]->size() + static_cast<size_t>(got) > spec.max_output_bytes) {
          stop = Stop::kOverflow;
        } else {
          sinks[i]->append(buffer, static_cast<size_t>(got));
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        streams[i]->Reset();  // EOF
      }
    }
    if (stop != Stop::kNone) break;
    if (fds[wake_slot].revents != 0) {
      char drain[64];
      while (read(wake->read.get(), drain, sizeof(drain)) > 0) {
      }
    }
    if (pid_slot >= 0 && fds[pid_slot].revents != 0) exited = child.Reap(/*block=*/false);
    if (!pidfd.valid() && !exited && !pipes_open) exited = child.Reap(/*block=*/false);
  }

  if (stop != Stop::kNone) {
    child.Signal(SIGTERM);
    if (!WaitForExit(child, pidfd, absl::Now() + spec.kill_grace)) {
      child.Signal(SIGKILL);
      child.Reap(/*block=*/true);
    }
    std::string tail = Tail(result.err);
    std::string detail = tail.empty() ? "" : absl::StrCat("; its stderr: ", tail);
    switch (stop) {
      case Stop::kDeadline:
        return absl::DeadlineExceededError(
            absl::StrCat(spec.program, " did not finish before the deadline and was killed",
                         detail));
      case Stop::kCancelled:
        return absl::CancelledError(
            absl::StrCat(spec.program, " was killed: the call was cancelled", detail));
      case Stop::kOverflow:
      case Stop::kNone:
        break;
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        spec.program, " wrote more than ", spec.max_output_bytes, " bytes and was killed"));
  }

  if (!child.status_known()) {
    return absl::InternalError(absl::StrCat("lost the exit status of ", spec.program));
  }
  const int status = child.wait_status();
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace lmgate::backends::cli
