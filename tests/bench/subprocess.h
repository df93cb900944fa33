// A child process for the benchmark and soak runs (lmgate itself, run as it is deployed), and
// the kernel's accounting of a process (RSS, CPU time, threads) read from /proc.
//
// Thread-safety: Subprocess methods may be called from any thread; WaitForLine() from one at a
// time. The child's stdout is drained by a thread of its own (lmgate logs there, and a full pipe
// would stall it); its stderr is inherited.
#ifndef LMGATE_TESTS_BENCH_SUBPROCESS_H_
#define LMGATE_TESTS_BENCH_SUBPROCESS_H_

#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lmgate::bench {

class Subprocess {
 public:
  // Starts argv[0] with argv; `started()` is taken just before the spawn.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(std::vector<std::string> argv);
  // Stop(absl::Seconds(10)) if still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  absl::Time started() const { return started_; }
  // The first stdout line (since the start) that contains `needle`; DEADLINE_EXCEEDED after
  // `timeout`, FAILED_PRECONDITION when the child closes stdout first (it exited).
  absl::StatusOr<std::string> WaitForLine(const std::string& needle, absl::Duration timeout);
  // The last stdout lines (diagnostics).
  std::string Tail() const;
  // SIGTERM, then SIGKILL after `grace`; returns the exit code (128+signal when killed).
  int Stop(absl::Duration grace);

 private:
  Subprocess() = default;
  void Drain(int fd);

  pid_t pid_ = -1;
  absl::Time started_;
  int exit_code_ = -1;
  std::thread drain_;
  mutable absl::Mutex mu_;
  std::vector<std::string> head_ ABSL_GUARDED_BY(mu_);  // the first kHeadLines lines
  std::deque<std::string> tail_ ABSL_GUARDED_BY(mu_);   // the last kTailLines lines
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// One sample of /proc/<pid>.
struct ProcUsage {
  double rss_mb = 0;       // VmRSS
  double peak_rss_mb = 0;  // VmHWM
  double cpu_seconds = 0;  // utime + stime
  int threads = 0;
  int fds = 0;
  // Voluntary + involuntary context switches summed over the threads alive now (each thread
  // hand-off is a futex wake and at least one switch).
  int64_t context_switches = 0;
};
absl::StatusOr<ProcUsage> ReadProcUsage(pid_t pid);

}  // namespace lmgate::bench

#endif  // LMGATE_TESTS_BENCH_SUBPROCESS_H_
