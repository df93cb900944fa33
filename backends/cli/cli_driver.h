// CliDriver: the Driver (kind kCli, registry name "cli") that runs LM Studio's `lms` command-line
// tool — model lifecycle only, never inference. It is the driver of last resort, and the one that
// works wherever `lms` does (shared/reference/lmstudio-protocol.md §5).
//
// Every operation runs `HostConfig::lms_path` (default "lms", looked up on $PATH) with
// `--host H --port P` from HostConfig::base_url, which makes the CLI skip its local discovery:
//
//   operation   command lines                                          notes
//   Probe       lms ps --json                                          answer cached ~1 s
//   ListModels  lms ls --json  and  lms ps --json                      run concurrently
//   Load        lms ls --json                                          model key -> path
//               lms load --exact -y [--gpu R] [--context-length N]    `--exact` matches the
//                 [--parallel N] [--ttl S] [--identifier=ID] -- PATH   path, never a fuzzy pick
//               lms ps --json                                          the new instance
//   Unload      lms unload -- ID                                       never without an ID
//               lms ps --json                                          ID is gone, or ABORTED
//
// Why `ls` before `load`: `lms load KEY -y` fuzzy-matches KEY and takes the best-scored match, so
// "qwen/qwen3-4b" may load "qwen/qwen3-4b-thinking-2507"; `--exact` matches the model's path.
// `load` prints no JSON: the instance identifier comes from its closing line (stderr), the
// instance from `ps --json`. Load progress is not reported: the CLI draws it as a spinner on
// stdout (terminal or not), which is ignored.
//
// Errors: no `lms` binary (or not executable) → FAILED_PRECONDITION with install hints; host
// unreachable → UNAVAILABLE; unknown model or instance → NOT_FOUND (the real CLI exits 0 after
// "Model Not Found" on unload, so diagnostics are read from stderr, not only the exit code); a
// load the host failed → ABORTED; output that is not the expected JSON → INTERNAL quoting it;
// load options `lms load` has no flag for → UNIMPLEMENTED; an identifier starting with '-' →
// INVALID_ARGUMENT (the real CLI takes `-v` for --version wherever it is, even after `--`, and
// exits 0); an unload `lms ps` still lists afterwards → ABORTED; a HOME the CLI cannot record its
// home directory under (it writes ~/.lmstudio-home-pointer at start-up) → FAILED_PRECONDITION
// naming HOME. A missing `lms` is reported
// without the server's PATH (logged at debug). Deadlines: the CallContext deadline,
// capped by HostConfig::request_timeout (load_timeout for the `load` step). Cancel or deadline
// kill the child (SIGTERM, then SIGKILL after `kill_grace`) and reap it; its WebSocket closes,
// which makes LM Studio abandon a load in progress.
//
// Only plain-http hosts without a path prefix and with a hostname or IPv4 address can be named to
// `lms` (it rejects hosts containing ':'); other base URLs make every operation answer
// FAILED_PRECONDITION.
//
// Authentication: an API token is passed to the child as LM_API_TOKEN, but lms@07b7252 ignores
// it — with --host it authenticates as "lms-cli-remote-<random>", and the SDK lets such legacy
// credentials win over LM_API_TOKEN — so a host that requires a token rejects the CLI, which then
// exits 13 (UNAUTHENTICATED, saying so and what to do). Newer CLIs may honour the variable.
//
// Thread-safety: as the Driver contract (driver.h); each call runs its own child processes.
// Shutdown() kills every running child (SIGTERM, then SIGKILL after kill_grace) and waits until
// each call running one has returned (UNAVAILABLE); later calls fail at once.
#ifndef LMGATE_BACKENDS_CLI_CLI_DRIVER_H_
#define LMGATE_BACKENDS_CLI_CLI_DRIVER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/cli/lms_output.h"
#include "backends/cli/subprocess.h"
#include "backends/driver.h"
#include "backends/registry.h"

namespace lmgate::backends::cli {

class CliDriver : public DriverBase {
 public:
  struct Options {
    HostConfig host;
    // Between SIGTERM and SIGKILL when a child must be stopped.
    absl::Duration kill_grace = absl::Seconds(2);
    // How long a Probe() answer is reused, and the longest a probe may take.
    absl::Duration probe_cache = absl::Seconds(1);
    absl::Duration probe_timeout = absl::Seconds(15);
    // Tests: called with the pid of every `lms` child right after it started, on the thread that
    // runs it.
    std::function<void(pid_t)> on_child_started;
  };

  // INVALID_ARGUMENT for an unparsable base URL. Runs nothing (a missing `lms` shows in Probe()).
  static absl::StatusOr<std::unique_ptr<CliDriver>> Create(Options options);

  DriverKind kind() const override { return DriverKind::kCli; }
  Capabilities capabilities() const override;
  void Shutdown() override;

  absl::Status Probe(const CallContext& ctx) override;
  absl::StatusOr<HostModels> ListModels(const CallContext& ctx) override;
  absl::StatusOr<InstanceInfo> Load(const CallContext& ctx, const LoadParams& params,
                                    const LoadProgressFn& progress) override;
  absl::Status Unload(const CallContext& ctx, const std::string& identifier) override;

  // The `--host H --port P` arguments every command gets (tests, logs).
  const std::vector<std::string>& host_args() const { return host_args_; }

 private:
  CliDriver(Options options, std::vector<std::string> host_args, absl::Status unsupported);

  // Runs `lms <args...> <host args>` until `deadline` (and the call's). `args` ends with the
  // positional arguments after "--" if any (host args are inserted before the "--").
  absl::StatusOr<ProcessResult> Run(const CallContext& ctx, std::vector<std::string> args,
                                    absl::Time deadline) const;
  // Run() + the failure reading of StatusOfRun().
  absl::StatusOr<ProcessResult> RunChecked(const CallContext& ctx, std::vector<std::string> args,
                                           absl::Time deadline) const;
  absl::StatusOr<std::vector<LsModel>> Ls(const CallContext& ctx) const;
  absl::StatusOr<std::vector<InstanceInfo>> Ps(const CallContext& ctx) const;
  absl::Time UnaryDeadline(const CallContext& ctx) const;

  const Options options_;
  const std::vector<std::string> host_args_;
  const absl::Status unsupported_;  // OK, or why this base URL cannot be given to `lms`

  // Cancelled by Shutdown(); every child's cancel token follows it.
  const std::shared_ptr<CancelToken> shutdown_ = std::make_shared<CancelToken>();

  mutable absl::Mutex mu_;
  mutable int running_ ABSL_GUARDED_BY(mu_) = 0;  // Run() calls in progress
  absl::Time probe_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status probe_status_ ABSL_GUARDED_BY(mu_);
};

// The Load() argument list for `params` and the model's `path` (without host args), e.g.
// {"load", "--exact", "-y", "--context-length", "8192", "--identifier=x", "--", path}.
// UNIMPLEMENTED naming the options `lms load` cannot set; INVALID_ARGUMENT for out-of-range values.
absl::StatusOr<std::vector<std::string>> LoadArgs(const LoadParams& params,
                                                  const std::string& path);

}  // namespace lmgate::backends::cli

#endif  // LMGATE_BACKENDS_CLI_CLI_DRIVER_H_
