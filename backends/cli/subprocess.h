// RunProcess: runs one child process to completion with its stdout and stderr captured, a
// deadline and a CancelToken — the process layer under the `cli` driver.
//
// Ownership and lifetime: every resource (pipes, the pidfd, the child itself) belongs to the one
// RunProcess() call that created it and is released before it returns, on every path. The child
// is always reaped: no zombie outlives the call, and a child still running when the call ends
// (deadline, cancel, too much output) is killed first.
//
// Killing: the child runs in its own process group; RunProcess sends SIGTERM to that group, waits
// up to `kill_grace` for the child to exit, then sends SIGKILL and reaps it. Only the group of a
// child this call started is ever signalled.
//
// Output: stdout and stderr are read concurrently from one poll() loop, so a child that fills one
// pipe while we wait on the other cannot deadlock. Output written after the child exited by
// descendants that inherited the pipes is not waited for.
//
// Thread-safety: RunProcess is reentrant; concurrent calls from any threads are independent.
// It blocks the calling thread (do not call it from a gRPC reaction).
#ifndef LMGATE_BACKENDS_CLI_SUBPROCESS_H_
#define LMGATE_BACKENDS_CLI_SUBPROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/driver.h"

namespace lmgate::backends::cli {

struct ProcessSpec {
  // An executable path (contains '/') or a name looked up on $PATH, like execvp().
  std::string program;
  std::vector<std::string> args;  // argv[1..]
  // Set in the child's environment (replacing a variable of the same name); the rest of the
  // parent's environment is inherited.
  std::vector<std::pair<std::string, std::string>> env;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<CancelToken> cancel;  // may be null
  // Between SIGTERM and SIGKILL.
  absl::Duration kill_grace = absl::Seconds(2);
  // Per stream. A child that writes more is killed (RESOURCE_EXHAUSTED).
  size_t max_output_bytes = size_t{16} << 20;
  // Called on the calling thread with the child's pid right after it started (tests use it to
  // check that the child is gone afterwards, or to cancel at a known point).
  std::function<void(pid_t)> on_started;
};

struct ProcessResult {
  // The exit status when the child exited on its own; -1 when a signal ended it.
  int exit_code = -1;
  // The signal that ended the child when it was not killed by RunProcess; 0 otherwise.
  int term_signal = 0;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `program` resolved like execvp(): as is when it contains '/', else the first executable
// regular file named `program` in the ':'-separated `search_path` (empty entries mean ".").
// NOT_FOUND when there is none (the message does not list `search_path`); PERMISSION_DENIED when it exists but is not executable.
absl::StatusOr<std::string> ResolveExecutable(const std::string& program,
                                              const std::string& search_path);

// Runs `spec` to completion. A non-zero exit or a death by signal is a ProcessResult, not an
// error. Errors: NOT_FOUND / PERMISSION_DENIED (ResolveExecutable), FAILED_PRECONDITION when the
// file cannot be executed, DEADLINE_EXCEEDED / CANCELLED / RESOURCE_EXHAUSTED after the child
// was killed and reaped (the message carries the tail of its stderr), INTERNAL for system call
// failures (pipe, spawn, wait).
absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec);

}  // namespace lmgate::backends::cli

#endif  // LMGATE_BACKENDS_CLI_SUBPROCESS_H_
