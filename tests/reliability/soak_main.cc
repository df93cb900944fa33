// lmgate_soak: mixed load for a long time against lmgate (a subprocess, as deployed) over the
// emulator (in this process), with the emulator's faults injected on a schedule. Prints lmgate's
// RSS, CPU and error counts every interval, then the RSS drift and whether anything was left
// running upstream. Not run in CI.
//
//   bazel run -c opt //tests/reliability:lmgate_soak -- --minutes=30
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/bench/chat_target.h"
#include "tests/bench/scenarios.h"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"

ABSL_FLAG(double, minutes, 30, "How long to run the load.");
ABSL_FLAG(double, rate, 200, "Calls per second (open loop).");
ABSL_FLAG(double, report_seconds, 60, "Seconds between progress lines.");
ABSL_FLAG(std::string, lmgate_bin, "services/lmgate", "lmgate binary.");

namespace lmgate::soak {
namespace {

using bench::ChatCall;
using bench::ChatCallbacks;
using bench::ChatSpec;
using bench::ChatTarget;

constexpr char kModel[] = "qwen/qwen3-4b";

class Counts {
 public:
  void Add(const absl::Status& st) {
    absl::MutexLock lock(&mu_);
    ++by_code_[st.code()];
    if (!st.ok() && st.code() != absl::StatusCode::kCancelled &&
        st.code() != absl::StatusCode::kDeadlineExceeded && first_.count(st.code()) == 0) {
      first_[st.code()] = std::string(st.message());
    }
  }
  std::string Line() const {
    absl::MutexLock lock(&mu_);
    std::string s;
    for (const auto& [code, n] : by_code_) {
      absl::StrAppend(&s, s.empty() ? "" : " ", absl::StatusCodeToString(code), "=", n);
    }
    return s;
  }
  int64_t Unclear() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (auto c : {absl::StatusCode::kUnknown, absl::StatusCode::kInternal}) {
      auto it = by_code_.find(c);
      if (it != by_code_.end()) n += it->second;
    }
    return n;
  }
  std::string Firsts() const {
    absl::MutexLock lock(&mu_);
    std::string s;
    for (const auto& [code, msg] : first_) {
      absl::StrAppend(&s, "  first ", absl::StatusCodeToString(code), ": ", msg, "\n");
    }
    return s;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<absl::StatusCode, int64_t> by_code_ ABSL_GUARDED_BY(mu_);
  std::map<absl::StatusCode, std::string> first_ ABSL_GUARDED_BY(mu_);
};

std::string WriteConfig(const std::string& url) {
  nlohmann::json c = {{"listen", "127.0.0.1:0"},
                      {"lmstudio", {{"url", url}, {"connect_timeout_seconds", 1}}},
                      {"default_model", kModel},
                      {"metrics_listen", ""},
                      {"log_level", "error"},
                      {"admission", {{"concurrency_per_model", 256}, {"max_queue_per_model", 4096}}}};
  char path[] = "/tmp/lmgate-soak-config.XXXXXX";
  const int fd = mkstemp(path);
  const std::string text = c.dump();
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "";
  close(fd);
  return path;
}

// One fault every few seconds, in turn.
void InjectFault(emulator::Emulator& emu, int64_t n) {
  switch (n % 6) {
    case 0: emu.DropAfterFragments(3); break;
    case 1: emu.FailNextHttpRequests(3, 503); break;
    case 2: emu.StallNextPrediction(2, 1500); break;
    case 3: emu.FailNextHttpRequests(2, 500); break;
    case 4: emu.StallNextPrediction(1, -1); break;  // until the caller's deadline cancels it
    case 5:
      if (n % 30 == 5) emu.RefuseConnections(300, /*drop_existing_connections=*/true);
      break;
  }
}

int Run() {
  emulator::Options eo;
  eo.settings.ttft_ms = 5;
  eo.settings.tokens_per_second = 500;
  eo.settings.default_parallel = 64;
  auto emu_or = emulator::Emulator::Create(eo);
  if (!emu_or.ok()) return 1;
  emulator::Emulator& emu = **emu_or;
  const std::string config = WriteConfig(emu.http_url());
  auto lmgate_or = bench::Subprocess::Start({absl::GetFlag(FLAGS_lmgate_bin), "--config=" + config});
  if (!lmgate_or.ok()) {
    std::fprintf(stderr, "%s\n", lmgate_or.status().ToString().c_str());
    return 1;
  }
  bench::Subprocess& lmgate = **lmgate_or;
  auto line = lmgate.WaitForLine("lmgate listening on", absl::Seconds(30));
  if (!line.ok()) return 1;
  auto channels = bench::MakeChannels(absl::StrCat("127.0.0.1:", bench::ParseListenPort(*line)), 2);
  std::vector<std::unique_ptr<ChatTarget>> targets;
  for (v1::Driver d : {v1::DRIVER_SDK, v1::DRIVER_REST, v1::DRIVER_OPENAI, v1::DRIVER_AUTO}) {
    targets.push_back(bench::MakeGrpcTarget(channels, d, kModel));
  }

  auto counts = std::make_shared<Counts>();
  std::mt19937_64 rng(42);
  std::deque<std::pair<absl::Time, std::unique_ptr<ChatCall>>> to_cancel;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Minutes(absl::GetFlag(FLAGS_minutes));
  const absl::Duration interval = absl::Seconds(1 / absl::GetFlag(FLAGS_rate));
  const absl::Duration report = absl::Seconds(absl::GetFlag(FLAGS_report_seconds));
  absl::Time next_report = start + absl::Seconds(10);  // first line after warm-up: the baseline
  absl::Time next_fault = start + absl::Seconds(15);
  int64_t faults = 0, sent = 0;
  double baseline_rss = -1;
  bench::ProcUsage last = bench::ReadProcUsage(lmgate.pid()).value_or(bench::ProcUsage{});
  absl::Time last_at = start;
  std::printf("| t s | sent | lmgate RSS MB | CPU %% | threads | fds | upstream active | "
              "outcomes |\n|---|---|---|---|---|---|---|---|\n");
  for (absl::Time t = start; t < end; t += interval) {
    absl::SleepFor(t - absl::Now());
    const absl::Time now = absl::Now();
    while (!to_cancel.empty() && to_cancel.front().first <= now) {
      to_cancel.front().second->Cancel();
      to_cancel.pop_front();
    }
    if (now >= next_fault) {
      InjectFault(emu, faults++);
      next_fault = now + absl::Seconds(5);
    }
    ChatSpec spec;
    const int kind = static_cast<int>(rng() % 100);
    spec.stream = kind >= 30;
    spec.timeout = kind < 5 ? absl::Milliseconds(100) : absl::Seconds(20);
    if (rng() % 4 == 0) spec.max_tokens = 1 + static_cast<int>(rng() % 64);
    ChatCallbacks cb;
    cb.on_done = [counts](const absl::Status& st, int, absl::Time) { counts->Add(st); };
    auto call = targets[rng() % targets.size()]->Start(spec, std::move(cb));
    ++sent;
    if (kind >= 90) {  // 10%: the client cancels after a few ms
      to_cancel.emplace_back(now + absl::Milliseconds(1 + rng() % 50), std::move(call));
    }
    if (now >= next_report) {
      const bench::ProcUsage u = bench::ReadProcUsage(lmgate.pid()).value_or(bench::ProcUsage{});
      const double cpu = 100 * (u.cpu_seconds - last.cpu_seconds) /
                         std::max(1e-3, absl::ToDoubleSeconds(now - last_at));
      if (baseline_rss < 0) baseline_rss = u.rss_mb;
      std::printf("| %.0f | %lld | %.1f | %.0f | %d | %d | %d | %s |\n",
                  absl::ToDoubleSeconds(now - start), static_cast<long long>(sent), u.rss_mb, cpu,
                  u.threads, u.fds, emu.Stats()["predictions_active"].get<int>(),
                  counts->Line().c_str());
      std::fflush(stdout);
      last = u;
      last_at = now;
      next_report = now + report;
    }
  }
  for (auto& [at, call] : to_cancel) call->Cancel();
  to_cancel.clear();
  // Let everything finish, then look for leftovers.
  const absl::Time quiet_until = absl::Now() + absl::Seconds(30);
  while (emu.Stats()["predictions_active"].get<int>() != 0 && absl::Now() < quiet_until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Seconds(2));
  const bench::ProcUsage final_usage =
      bench::ReadProcUsage(lmgate.pid()).value_or(bench::ProcUsage{});
  const int active = emu.Stats()["predictions_active"].get<int>();
  std::printf("\nsoak: %.1f min, %lld calls: %s\n",
              absl::ToDoubleMinutes(absl::Now() - start), static_cast<long long>(sent),
              counts->Line().c_str());
  std::printf("%s", counts->Firsts().c_str());
  std::printf("lmgate RSS: %.1f MB after warm-up, %.1f MB at the end (drift %+.1f MB); peak %.1f MB\n",
              baseline_rss, final_usage.rss_mb, final_usage.rss_mb - baseline_rss,
              final_usage.peak_rss_mb);
  std::printf("upstream predictions still active: %d; UNKNOWN/INTERNAL answers: %lld\n", active,
              static_cast<long long>(counts->Unclear()));
  const int code = lmgate.Stop(absl::Seconds(30));
  std::printf("lmgate exit code on SIGTERM: %d\n", code);
  unlink(config.c_str());
  return active == 0 && counts->Unclear() == 0 && code == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lmgate::soak

int main(int argc, char** argv) {
  // As in lmgate's main: Debian's Abseil tracks lock order on every Lock unless told not to.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  return lmgate::soak::Run();
}
