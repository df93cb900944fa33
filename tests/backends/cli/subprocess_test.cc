// RunProcess: output capture without deadlock, exit codes and signals, missing programs,
// deadlines and cancellation that kill and reap the child (SIGKILL for one ignoring SIGTERM).
#include "backends/cli/subprocess.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lmgate::backends::cli {
namespace {

ProcessSpec Shell(const std::string& script) {
  ProcessSpec spec;
  spec.program = "/bin/sh";
  spec.args = {"-c", script};
  spec.deadline = absl::Now() + absl::Seconds(30);
  return spec;
}

// True once `pid` no longer exists (reaped: not even a zombie).
bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

std::string TempPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

TEST(RunProcess, CapturesBothStreamsAndTheExitCode) {
  absl::StatusOr<ProcessResult> r = RunProcess(Shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->term_signal, 0);
}

TEST(RunProcess, LargeOutputOnBothStreamsDoesNotDeadlock) {
  // 1 MiB on each stream, interleaved: far beyond the pipe buffers.
  absl::StatusOr<ProcessResult> r = RunProcess(
      Shell("i=0; while [ $i -lt 16 ]; do head -c 65536 /dev/zero | tr '\\0' a; "
            "head -c 65536 /dev/zero | tr '\\0' b >&2; i=$((i+1)); done"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out.size(), 1u << 20);
  EXPECT_EQ(r->err.size(), 1u << 20);
  EXPECT_EQ(r->out.find_first_not_of('a'), std::string::npos);
  EXPECT_EQ(r->exit_code, 0);
}

TEST(RunProcess, ArgumentsEnvironmentAndStdin) {
  ProcessSpec spec = Shell("printf '%s|' \"$@\"; printf '%s' \"$LMGATE_X\"; cat");
  spec.args.insert(spec.args.end(), {"sh", "a b", "--c=d", ""});
  spec.env = {{"LMGATE_X", "y=z"}};
  absl::StatusOr<ProcessResult> r = RunProcess(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  // Arguments arrive verbatim; `cat` sees /dev/null on stdin and ends at once.
  EXPECT_EQ(r->out, "a b|--c=d||y=z");
}

TEST(RunProcess, DeathBySignalIsReported) {
  absl::StatusOr<ProcessResult> r = RunProcess(Shell("kill -TERM $$"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->term_signal, SIGTERM);
}

TEST(RunProcess, MissingAndNonExecutablePrograms) {
  ProcessSpec spec;
  spec.program = "lmgate-no-such-program-anywhere";
  absl::Status s = RunProcess(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("not found on PATH"), absl::string_view::npos) << s;
  spec.program = "/nonexistent/dir/lms";
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kNotFound);

  const std::string plain = TempPath("not-executable");
  std::ofstream(plain) << "#!/bin/sh\necho hi\n";
  chmod(plain.c_str(), 0644);
  spec.program = plain;
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kPermissionDenied);
  const std::string garbage = TempPath("garbage-executable");
  std::ofstream(garbage) << std::string("\x7f" "ELF garbage");
  chmod(garbage.c_str(), 0755);
  spec.program = garbage;
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ResolveExecutable, SearchesPathLikeExecvp) {
  EXPECT_EQ(*ResolveExecutable("sh", "/nonexistent:/bin"), "/bin/sh");
  EXPECT_EQ(ResolveExecutable("sh", "/nonexistent").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveExecutable("", "/bin").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*ResolveExecutable("/bin/sh", ""), "/bin/sh");
}

TEST(RunProcess, DeadlineKillsAndReapsTheChild) {
  ProcessSpec spec = Shell("echo started >&2; exec sleep 100");
  spec.deadline = absl::Now() + absl::Milliseconds(300);
  pid_t pid = -1;
  spec.on_started = [&](pid_t p) { pid = p; };
  const absl::Time start = absl::Now();
  absl::Status s = RunProcess(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(Gone(pid));
}

TEST(RunProcess, ChildIgnoringSigtermGetsSigkill) {
  // The shell ignores SIGTERM and so does `sleep` after exec (ignored signals survive exec).
  ProcessSpec spec = Shell("trap '' TERM; exec sleep 100");
  spec.deadline = absl::Now() + absl::Milliseconds(300);
  spec.kill_grace = absl::Milliseconds(200);
  pid_t pid = -1;
  spec.on_started = [&](pid_t p) { pid = p; };
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Gone(pid));
}

TEST(RunProcess, CancelKillsTheChildAndItsGroup) {
  // The child starts a grandchild that holds the pipes; both belong to the child's group.
  auto token = std::make_shared<CancelToken>();
  ProcessSpec spec = Shell("sleep 100 & exec sleep 100");
  spec.cancel = token;
  pid_t pid = -1;
  spec.on_started = [&](pid_t p) {
    pid = p;
    token->Cancel();
  };
  absl::Status s = RunProcess(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_TRUE(Gone(pid));
  // Cancelled before the start: nothing waits.
  spec.on_started = nullptr;
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kCancelled);
}

TEST(RunProcess, TooMuchOutputKillsTheChild) {
  ProcessSpec spec = Shell("exec cat /dev/zero");
  spec.max_output_bytes = 1 << 16;
  pid_t pid = -1;
  spec.on_started = [&](pid_t p) { pid = p; };
  EXPECT_EQ(RunProcess(spec).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Gone(pid));
}

TEST(RunProcess, OutputOfDescendantsAfterExitIsNotWaitedFor) {
  // The child exits at once; a background grandchild keeps the pipes open.
  ProcessSpec spec = Shell("echo done; sleep 60 & exit 0");
  pid_t pid = -1;
  spec.on_started = [&](pid_t p) { pid = p; };
  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> r = RunProcess(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "done\n");
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  // Clean up the grandchild: it is still in the child's process group.
  kill(-pid, SIGKILL);
}

}  // namespace
}  // namespace lmgate::backends::cli
