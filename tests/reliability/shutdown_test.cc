// SIGTERM under load: the real lmgate binary (built with the test's config, so under ASan with
// --config=asan) over the emulator, ~150 streams running through sdk_ws, rest and openai and a
// model load in flight, then SIGTERM. Every run must exit 0 and every stream must end with a
// clear status. Before the shutdown order was fixed, driver threads completed predictions into
// a freed observer/registry after ~LmgateServer (exit 139, or ASan's exit 1).
//
//   bazel test --config=asan //tests/reliability:shutdown_test --test_arg=--runs=50
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/bench/chat_target.h"
#include "tests/bench/scenarios.h"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

int g_runs = 10;  // --runs=N

constexpr char kModel[] = "qwen/qwen3-4b";
constexpr char kSlowModel[] = "google/gemma-3-1b";  // loading when SIGTERM arrives
constexpr int kStreamsPerDriver = 50;

using testutil::Scaled;

// What the streams of one run ended with.
class Outcomes {
 public:
  void FirstToken() {
    absl::MutexLock lock(&mu_);
    ++first_tokens_;
  }
  void Done(const absl::Status& st) {
    absl::MutexLock lock(&mu_);
    ++by_code_[st.code()];
    if (!Clear(st.code()) && unclear_.empty()) unclear_ = st.ToString();
    ++done_;
  }
  bool WaitFirstTokens(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return first_tokens_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  bool WaitDone(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  int done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  std::string unclear() const {
    absl::MutexLock lock(&mu_);
    return unclear_;
  }
  std::string Line() const {
    absl::MutexLock lock(&mu_);
    std::string s;
    for (const auto& [code, n] : by_code_) {
      absl::StrAppend(&s, s.empty() ? "" : " ", absl::StatusCodeToString(code), "=", n);
    }
    return s;
  }

  // A status a client can act on: finished, cancelled by the shutdown, or "retry elsewhere".
  static bool Clear(absl::StatusCode c) {
    return c == absl::StatusCode::kOk || c == absl::StatusCode::kCancelled ||
           c == absl::StatusCode::kUnavailable;
  }

 private:
  mutable absl::Mutex mu_;
  int first_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<absl::StatusCode, int> by_code_ ABSL_GUARDED_BY(mu_);
  std::string unclear_ ABSL_GUARDED_BY(mu_);
};

std::string WriteConfig(const std::string& url) {
  nlohmann::json c = {
      {"listen", "127.0.0.1:0"},
      {"lmstudio", {{"url", url}, {"connect_timeout_seconds", 1}}},
      {"default_model", kModel},
      {"metrics_listen", ""},
      {"log_level", "error"},
      // Long enough for the drain to start, short enough that the streams are still running
      // upstream when the grace ends and the calls are cancelled.
      {"shutdown_grace_seconds", 0.5},
      {"admission", {{"concurrency_per_model", 512}, {"max_queue_per_model", 1024}}}};
  char path[] = "/tmp/lmgate-shutdown-config.XXXXXX";
  const int fd = mkstemp(path);
  const std::string text = c.dump();
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "";
  close(fd);
  return path;
}

struct RunResult {
  int exit_code = -1;
  std::string outcomes;
};

// One run: a fresh emulator and lmgate, streams, SIGTERM. Failures are reported by gtest.
RunResult RunOnce(int run) {
  RunResult r;
  emulator::Options eo;
  eo.settings.ttft_ms = 5;
  eo.settings.tokens_per_second = 20;  // a stream of 2000 tokens outlasts the run
  eo.settings.default_parallel = 256;
  auto emu = emulator::Emulator::Create(eo);
  EXPECT_TRUE(emu.ok()) << emu.status();
  if (!emu.ok()) return r;
  const std::string config = WriteConfig((*emu)->http_url());
  auto lmgate = bench::Subprocess::Start({"services/lmgate", "--config=" + config});
  EXPECT_TRUE(lmgate.ok()) << lmgate.status();
  if (!lmgate.ok()) return r;
  auto line = (*lmgate)->WaitForLine("lmgate listening on", Scaled(absl::Seconds(30)));
  EXPECT_TRUE(line.ok()) << line.status() << "\n" << (*lmgate)->Tail();
  if (!line.ok()) return r;
  auto channels =
      bench::MakeChannels(absl::StrCat("127.0.0.1:", bench::ParseListenPort(*line)), 4);

  Outcomes outcomes;
  std::vector<std::unique_ptr<bench::ChatCall>> calls;
  bench::ChatSpec spec;
  spec.max_tokens = 2000;
  spec.timeout = Scaled(absl::Seconds(120));
  auto start = [&](bench::ChatTarget& target, bool count_first_token) {
    bench::ChatCallbacks cb;
    if (count_first_token) cb.on_first_token = [&outcomes](absl::Time) { outcomes.FirstToken(); };
    cb.on_done = [&outcomes](const absl::Status& st, int, absl::Time) { outcomes.Done(st); };
    calls.push_back(target.Start(spec, std::move(cb)));
  };
  std::vector<std::unique_ptr<bench::ChatTarget>> targets;
  for (v1::Driver d : {v1::DRIVER_SDK, v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    targets.push_back(bench::MakeGrpcTarget(channels, d, kModel));
  }
  // The first stream loads the model; the others then start on a READY instance.
  start(*targets[0], true);
  EXPECT_TRUE(outcomes.WaitFirstTokens(1, Scaled(absl::Seconds(30)))) << (*lmgate)->Tail();
  for (int i = 0; i < kStreamsPerDriver; ++i) {
    for (size_t t = 0; t < targets.size(); ++t) {
      if (t != 0 || i != 0) start(*targets[t], true);
    }
  }
  const int streaming = kStreamsPerDriver * static_cast<int>(targets.size());
  EXPECT_TRUE(outcomes.WaitFirstTokens(streaming, Scaled(absl::Seconds(60))))
      << "streams did not all start; " << outcomes.Line();
  // A few requests for a model whose load takes long: a lifecycle load thread is running.
  (*emu)->SetLoadTimeMultiplier(1000);
  auto slow = bench::MakeGrpcTarget(channels, v1::DRIVER_AUTO, kSlowModel);
  for (int i = 0; i < 4; ++i) start(*slow, false);
  const int total = static_cast<int>(calls.size());

  EXPECT_EQ(kill((*lmgate)->pid(), SIGTERM), 0);
  r.exit_code = (*lmgate)->Stop(Scaled(absl::Seconds(60)));
  // The process is gone: every call ends (the client sees the connection close at the latest).
  EXPECT_TRUE(outcomes.WaitDone(total, Scaled(absl::Seconds(60))))
      << outcomes.done() << " of " << total << " streams ended";
  r.outcomes = outcomes.Line();
  EXPECT_EQ(outcomes.unclear(), "") << "run " << run << ": a stream ended without a clear status";
  EXPECT_EQ(r.exit_code, 0) << "run " << run << ": lmgate exited " << r.exit_code << "\n"
                            << (*lmgate)->Tail();
  unlink(config.c_str());
  return r;
}

TEST(ShutdownTest, SigtermUnderLoadExitsCleanly) {
  std::map<int, int> exits;
  for (int run = 0; run < g_runs; ++run) {
    RunResult r = RunOnce(run);
    ++exits[r.exit_code];
    std::printf("run %d: exit %d; streams %s\n", run, r.exit_code, r.outcomes.c_str());
    std::fflush(stdout);
  }
  std::string summary;
  for (const auto& [code, n] : exits) absl::StrAppend(&summary, " exit ", code, ": ", n);
  std::printf("%d runs:%s\n", g_runs, summary.c_str());
  EXPECT_EQ(exits[0], g_runs) << summary;
}

}  // namespace
}  // namespace lmgate

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--runs=") && !absl::SimpleAtoi(a, &lmgate::g_runs)) {
      std::fprintf(stderr, "bad --runs\n");
      return 2;
    }
  }
  return RUN_ALL_TESTS();
}
