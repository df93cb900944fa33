// The benchmark's measurements, each over one or two ChatTargets (chat_target.h). They report
// what they measured and never judge it: bench_main.cc prints the tables.
//
// Thread-compatible: run one scenario at a time (they share the emulator's settings).
#ifndef LMGATE_TESTS_BENCH_SCENARIOS_H_
#define LMGATE_TESTS_BENCH_SCENARIOS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/bench/chat_target.h"
#include "tests/bench/stats.h"
#include "tests/bench/subprocess.h"

namespace lmgate::emulator {
class Emulator;
}

namespace lmgate::bench {

// Calls of a run: counts, latencies and the first error seen.
struct RunResult {
  int64_t sent = 0;
  int64_t ok = 0;
  int64_t errors = 0;
  int64_t skipped = 0;  // open loop: not sent because max_outstanding calls were pending
  std::string first_error;
  std::shared_ptr<Samples> latency = std::make_shared<Samples>();  // send → done
  std::shared_ptr<Samples> ttft = std::make_shared<Samples>();     // send → first token
  std::shared_ptr<Samples> pacing_lag = std::make_shared<Samples>();  // intended → actual send
  double seconds = 0;
  int64_t tokens = 0;
};

// 1. Open loop: one call every 1/rate s (absolute schedule) for `duration`, whatever the answers
// do; waits for the stragglers. Latency is measured from the actual send.
RunResult RunOpenLoop(ChatTarget& target, const ChatSpec& spec, double rate,
                      absl::Duration duration, int64_t max_outstanding);

// Closed loop: `callers` threads, each starting its next call when the last one ended, for
// `duration`. Throughput = ok / seconds.
RunResult RunClosedLoop(ChatTarget& target, const ChatSpec& spec, int callers,
                        absl::Duration duration);

// Closed loop, one call at a time, alternating between the targets call by call (so drift of a
// shared machine hits both alike). Returns one result per target.
std::vector<RunResult> RunAlternating(const std::vector<ChatTarget*>& targets,
                                      const ChatSpec& spec, int calls_each);

// 2b. Relay: `concurrency` long streams at once; tokens/s = completion tokens / (last done −
// first send). Repeated `rounds` times per target, alternating; returns tokens/s per round.
std::vector<std::vector<double>> RunRelay(const std::vector<ChatTarget*>& targets,
                                          const ChatSpec& spec, int concurrency, int rounds);

// 5. Cancel: per call, wait for the first token, Cancel(), then poll the emulator's
// predictions_active until it drops back; latency = Cancel() → seen stopped upstream.
std::vector<RunResult> RunCancel(emulator::Emulator& emu, const std::vector<ChatTarget*>& targets,
                                 const ChatSpec& spec, int calls_each);

// 3. Open streams through lmgate (pid `lmgate_pid`): opens `n` streams (paced at `open_rate`),
// waits until the emulator has them all active, holds them `hold`, cancels them all.
struct StreamsResult {
  int n = 0;
  int opened = 0;     // predictions active upstream at the peak
  double open_seconds = 0;
  double cancel_seconds = 0;  // cancel all → predictions_active back to 0
  ProcUsage before, open, after_hold, after_cancel;
  int errors_other_than_cancelled = 0;
  std::string first_error;
};
StreamsResult RunOpenStreams(emulator::Emulator& emu, ChatTarget& lmgate, pid_t lmgate_pid, int n,
                             double open_rate, absl::Duration hold);

// 4. Start-up: spawns `argv` `runs` times; per run the time from spawn to the first SERVING
// answer of grpc.health.v1 for "" (liveness) and for "lmgate.v1.Inference" (readiness: the host
// answered), and the RSS once ready and after `settle` idle.
struct StartupResult {
  std::shared_ptr<Samples> to_live = std::make_shared<Samples>();
  std::shared_ptr<Samples> to_ready = std::make_shared<Samples>();
  std::vector<double> rss_ready_mb, rss_idle_mb;
  std::string error;
};
StartupResult RunStartup(const std::vector<std::string>& argv, int runs, absl::Duration settle);

// The port in lmgate's "lmgate listening on HOST:PORT" line; -1 if absent.
int ParseListenPort(const std::string& line);

}  // namespace lmgate::bench

#endif  // LMGATE_TESTS_BENCH_SCENARIOS_H_
