// lmgate_bench: the same chat workload straight to an LM Studio host (the emulator, at zero think
// time) and through lmgate, in one run, printed as markdown beside the published figures of other
// gateways. It measures and prints; it never judges (no exit status depends on a timing).
//
//   bazel run -c opt //tests/bench:lmgate_bench            # --full (default): minutes
//   bazel run -c opt //tests/bench:lmgate_bench -- --short # a few seconds (what CI runs)
//
// Processes: the emulator runs inside this process (its counters are read directly, which the
// cancel measurement polls); lmgate runs as a subprocess, as deployed, so its RSS, CPU time and
// start-up are the kernel's accounting of lmgate alone and it shares no allocator or gRPC core
// with the load generator. All three still share the machine's cores.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/bench/chat_target.h"
#include "tests/bench/scenarios.h"
#include "tests/bench/stats.h"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"

ABSL_FLAG(bool, short, false, "CI mode: small counts, a few seconds.");
ABSL_FLAG(bool, full, false, "Full run (the default unless --short).");
ABSL_FLAG(std::string, lmgate_bin, "services/lmgate",
          "lmgate binary (default: the runfiles path under bazel run/test).");
ABSL_FLAG(std::string, rates, "", "Open-loop rates, req/s (default: short 500,2000; full "
                                  "500,2000,5000).");
ABSL_FLAG(double, rate_seconds, 0, "Seconds per rate and target (default: short 1, full 10).");
ABSL_FLAG(std::string, streams, "", "Open-stream counts (default: short 200; full 1000,10000).");
ABSL_FLAG(std::string, drivers, "sdk_ws,openai", "Drivers to compare (sdk_ws, openai, rest).");
ABSL_FLAG(int, channels, 2, "gRPC channels (TCP connections) from the load generator to lmgate.");
ABSL_FLAG(std::string, report, "", "Also write the markdown report to this file.");
ABSL_FLAG(std::string, only, "",
          "Comma-separated sections to run (unary, capacity, ttft, relay, cancel, streams, "
          "startup); empty = all.");
ABSL_FLAG(int, answer_tokens, 8, "Tokens per answer in the unary, capacity and TTFT sections.");

namespace lmgate::bench {
namespace {

constexpr char kModel[] = "qwen/qwen3-4b";

struct Plan {
  bool full = true;
  std::vector<double> rates;
  absl::Duration rate_time;
  std::vector<int> streams;
  int ttft_calls, cancel_calls, startup_runs, relay_tokens, relay_rounds;
  absl::Duration hold;
};

template <typename T>
std::vector<T> ParseList(const std::string& s, std::vector<T> fallback) {
  if (s.empty()) return fallback;
  std::vector<T> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    double v = 0;
    if (absl::SimpleAtod(part, &v)) out.push_back(static_cast<T>(v));
  }
  return out;
}

Plan MakePlan() {
  Plan p;
  p.full = !absl::GetFlag(FLAGS_short) || absl::GetFlag(FLAGS_full);
  p.rates = ParseList<double>(absl::GetFlag(FLAGS_rates),
                              p.full ? std::vector<double>{500, 2000, 5000}
                                     : std::vector<double>{500, 2000});
  double secs = absl::GetFlag(FLAGS_rate_seconds);
  p.rate_time = absl::Seconds(secs > 0 ? secs : (p.full ? 10 : 1));
  p.streams = ParseList<int>(absl::GetFlag(FLAGS_streams),
                             p.full ? std::vector<int>{1000, 10000} : std::vector<int>{200});
  p.ttft_calls = p.full ? 1000 : 100;
  p.cancel_calls = p.full ? 200 : 20;
  p.startup_runs = p.full ? 10 : 2;
  p.relay_tokens = p.full ? 20000 : 3000;
  p.relay_rounds = p.full ? 5 : 2;
  p.hold = absl::Seconds(p.full ? 10 : 1);
  return p;
}

void SetEmu(emulator::Emulator& emu, int64_t ttft_ms, double tps, int tokens) {
  emulator::Settings s = emu.settings();
  s.ttft_ms = ttft_ms;
  s.tokens_per_second = tps;
  s.min_response_tokens = s.max_response_tokens = tokens;
  emu.SetSettings(s);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

std::string WriteConfig(const std::string& emu_url) {
  nlohmann::json c = {
      {"listen", "127.0.0.1:0"},
      {"lmstudio", {{"url", emu_url}}},
      {"drivers", {"sdk_ws", "rest", "openai"}},
      {"default_model", kModel},
      {"metrics_listen", ""},  // metrics are still collected; no port to clash between runs
      {"log_level", "warn"},
      // The benchmark measures the gateway, not its queue: every call runs upstream at once.
      {"admission", {{"concurrency_per_model", 1000000}, {"max_queue_per_model", 1000000}}},
      // The open-streams rows put 5,000 streams on each of --channels=2 connections, past the
      // deployed per-connection stream limit (1,000) and transport memory quota (32 MiB).
      {"limits", {{"max_concurrent_streams_per_connection", 100000},
                  {"server_memory_bytes", int64_t{2} << 30}}},
      {"models", {{kModel, {{"context_length", 40960}, {"keep_loaded", true}}}}},
  };
  char path[] = "/tmp/lmgate-bench-config.XXXXXX";
  const int fd = mkstemp(path);
  const std::string text = c.dump(2);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "";
  close(fd);
  return path;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class Report {
 public:
  template <typename... A>
  void Line(const A&... a) {
    absl::StrAppend(&text_, a..., "\n");
    std::printf("%s\n", absl::StrCat(a...).c_str());
    std::fflush(stdout);
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Figures the target table reads back.
struct Headline {
  std::optional<double> added_p50_2k, added_p99_2k;
  std::optional<double> added_ttft_p50;
  std::optional<double> relay_ratio;
  std::optional<double> rss_10k_mb;
  int rss_streams = 0;
  std::optional<double> idle_rss_mb;
  std::optional<double> lmgate_p50_2k, lmgate_p99_2k;
  std::optional<double> lmgate_cpu_us_per_call;
};

double SelfCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of lmgate and of this process (load generator + emulator) over a scope.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t lmgate) : pid_(lmgate) {
    const ProcUsage u = ReadProcUsage(pid_).value_or(ProcUsage{});
    lmgate0_ = u.cpu_seconds;
    switches0_ = u.context_switches;
    self0_ = SelfCpuSeconds();
  }
  double lmgate() const { return ReadProcUsage(pid_).value_or(ProcUsage{}).cpu_seconds - lmgate0_; }
  // lmgate's context switches since construction (its thread set is fixed under load).
  int64_t lmgate_switches() const {
    return ReadProcUsage(pid_).value_or(ProcUsage{}).context_switches - switches0_;
  }
  double self() const { return SelfCpuSeconds() - self0_; }

 private:
  pid_t pid_;
  double lmgate0_, self0_;
  int64_t switches0_ = 0;
};

std::string PerCall(double seconds, int64_t calls) {
  return calls > 0 ? Num(seconds * 1e6 / calls) : "—";
}

// Everything the sections share.
struct Bench {
  Plan plan;
  Report out;
  Headline head;
  std::vector<std::string> drivers;
  emulator::Emulator* emu = nullptr;
  std::vector<std::string> lmgate_argv;
  Subprocess* lmgate = nullptr;
  int unclean_exits = 0;  // the extra lmgate processes (open-streams rows) that did not exit 0
  std::map<std::string, std::unique_ptr<ChatTarget>> direct, via;
  int answer_tokens = 8;

  void Emu(int64_t ttft_ms, double tps, int tokens) { SetEmu(*emu, ttft_ms, tps, tokens); }
};

// A running lmgate subprocess and gRPC channels to it.
struct Lmgate {
  std::unique_ptr<Subprocess> proc;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
};

absl::StatusOr<Lmgate> StartLmgate(const std::vector<std::string>& argv) {
  auto proc = Subprocess::Start(argv);
  if (!proc.ok()) return proc.status();
  auto line = (*proc)->WaitForLine("lmgate listening on", absl::Seconds(60));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat("lmgate: ", line.status().message(), "\n", (*proc)->Tail()));
  }
  Lmgate l;
  l.channels = MakeChannels(absl::StrCat("127.0.0.1:", ParseListenPort(*line)),
                            absl::GetFlag(FLAGS_channels));
  l.proc = *std::move(proc);
  return l;
}

v1::Driver ProtoDriver(const std::string& d) {
  return d == "openai" ? v1::DRIVER_OPENAI : d == "rest" ? v1::DRIVER_REST : v1::DRIVER_SDK;
}

std::string ErrorsCell(const RunResult& r) {
  std::string s = absl::StrCat(r.errors + r.skipped);
  if (!r.first_error.empty()) absl::StrAppend(&s, " (", r.first_error.substr(0, 60), ")");
  return s;
}


void UnarySection(Bench& b) {
  b.Emu(0, 0, b.answer_tokens);
  b.out.Line("## 1. Non-streamed chat, open loop (", b.answer_tokens,
             "-token answers; latency µs from send to the whole answer)");
  b.out.Line("");
  b.out.Line("| driver | req/s | path | sent | errors | p50 | p99 | p99.9 | lmgate CPU µs/call | "
             "lmgate context switches/call | load generator + emulator CPU µs/call | "
             "pacing lag p99 |");
  b.out.Line("|---|---|---|---|---|---|---|---|---|---|---|---|");
  std::vector<std::string> added_rows;
  ChatSpec unary;
  unary.stream = false;
  unary.timeout = absl::Seconds(30);
  for (const std::string& d : b.drivers) {
    for (double rate : b.plan.rates) {
      // Two halves each, alternating, so a noisy neighbour hits both paths alike.
      RunResult merged[2];
      double cpu_lmgate[2] = {0, 0}, cpu_self[2] = {0, 0};
      int64_t switches[2] = {0, 0};
      ChatTarget* order[2] = {b.direct[d].get(), b.via[d].get()};
      for (int half = 0; half < 2; ++half) {
        for (int t = 0; t < 2; ++t) {
          CpuMeter cpu(b.lmgate->pid());
          RunResult r = RunOpenLoop(*order[t], unary, rate, b.plan.rate_time / 2, 20000);
          cpu_lmgate[t] += cpu.lmgate();
          switches[t] += cpu.lmgate_switches();
          cpu_self[t] += cpu.self();
          RunResult& m = merged[t];
          m.sent += r.sent;
          m.ok += r.ok;
          m.errors += r.errors;
          m.skipped += r.skipped;
          if (m.first_error.empty()) m.first_error = r.first_error;
          m.latency->Merge(*r.latency);
          m.pacing_lag->Merge(*r.pacing_lag);
        }
      }
      for (int t = 0; t < 2; ++t) {
        const RunResult& r = merged[t];
        b.out.Line("| ", d, " | ", Num(rate), " | ", t == 0 ? "direct" : "lmgate", " | ", r.sent,
                   " | ", ErrorsCell(r), " | ", Us(r.latency->PercentileUs(50)), " | ",
                   Us(r.latency->PercentileUs(99)), " | ", Us(r.latency->PercentileUs(99.9)),
                   " | ", PerCall(cpu_lmgate[t], r.sent), " | ",
                   t == 0 || r.sent == 0 ? std::string("—")
                                         : absl::StrFormat("%.1f", switches[t] * 1.0 / r.sent),
                   " | ", PerCall(cpu_self[t], r.sent), " | ", Us(r.pacing_lag->PercentileUs(99)),
                   " |");
      }
      const Samples& a = *merged[1].latency;
      const Samples& c = *merged[0].latency;
      added_rows.push_back(absl::StrCat("| ", d, " | ", Num(rate), " | ",
                                        DiffUs(a.PercentileUs(50), c.PercentileUs(50)), " | ",
                                        DiffUs(a.PercentileUs(99), c.PercentileUs(99)), " | ",
                                        DiffUs(a.PercentileUs(99.9), c.PercentileUs(99.9)), " |"));
      if (d == b.drivers.front() && rate == 2000 && a.count() > 0 && c.count() > 0) {
        b.head.added_p50_2k = *a.PercentileUs(50) - *c.PercentileUs(50);
        b.head.added_p99_2k = *a.PercentileUs(99) - *c.PercentileUs(99);
        b.head.lmgate_p50_2k = a.PercentileUs(50);
        b.head.lmgate_p99_2k = a.PercentileUs(99);
      }
      if (d == b.drivers.front() && merged[1].sent > 0 &&
          (!b.head.lmgate_cpu_us_per_call || rate == 2000)) {
        b.head.lmgate_cpu_us_per_call = cpu_lmgate[1] * 1e6 / merged[1].sent;
      }
    }
  }
  b.out.Line("");
  b.out.Line("Added by lmgate (µs; lmgate − direct at the same percentile):");
  b.out.Line("");
  b.out.Line("| driver | req/s | p50 | p99 | p99.9 |");
  b.out.Line("|---|---|---|---|---|");
  for (const auto& r : added_rows) b.out.Line(r);
  b.out.Line("");
  // What the rates above left behind (calls that queued while the box was saturated), and what
  // remains once lmgate's housekeeping loop (every health interval, 2 s) gave freed heap back.
  const double rss_end = ReadProcUsage(b.lmgate->pid()).value_or(ProcUsage{}).rss_mb;
  absl::SleepFor(absl::Seconds(3));
  b.out.Line("lmgate RSS at the end of this section: ", Num(rss_end, 1), " MB; 3 s later: ",
             Num(ReadProcUsage(b.lmgate->pid()).value_or(ProcUsage{}).rss_mb, 1), " MB.");
  b.out.Line("");
}

void CapacitySection(Bench& b) {
  b.Emu(0, 0, b.answer_tokens);
  const int callers = 32;
  b.out.Line("## 2. Capacity: closed loop, ", callers, " callers, non-streamed ", b.answer_tokens,
             "-token chats (what the whole box sustains)");
  b.out.Line("");
  b.out.Line("| driver | path | calls/s | p50 µs | p99 µs | errors | lmgate CPU µs/call | "
             "load generator + emulator CPU µs/call |");
  b.out.Line("|---|---|---|---|---|---|---|---|");
  ChatSpec unary;
  unary.stream = false;
  for (const std::string& d : b.drivers) {
    ChatTarget* order[2] = {b.direct[d].get(), b.via[d].get()};
    for (int t = 0; t < 2; ++t) {
      CpuMeter cpu(b.lmgate->pid());
      RunResult r = RunClosedLoop(*order[t], unary, callers, b.plan.rate_time);
      b.out.Line("| ", d, " | ", t == 0 ? "direct" : "lmgate", " | ",
                 Num(r.seconds > 0 ? r.ok / r.seconds : 0), " | ", Us(r.latency->PercentileUs(50)),
                 " | ", Us(r.latency->PercentileUs(99)), " | ", ErrorsCell(r), " | ",
                 PerCall(cpu.lmgate(), r.sent), " | ", PerCall(cpu.self(), r.sent), " |");
    }
  }
  b.out.Line("");
}

void TtftSection(Bench& b) {
  b.Emu(0, 0, b.answer_tokens);
  ChatSpec streamed;
  streamed.stream = true;
  streamed.timeout = absl::Seconds(30);
  b.out.Line("## 3. Streamed chat: time to first token (µs; one call at a time, ", b.plan.ttft_calls,
             " per path, paths alternating)");
  b.out.Line("");
  b.out.Line("| driver | direct p50 | direct p99 | lmgate p50 | lmgate p99 | added p50 | "
             "added p99 | errors |");
  b.out.Line("|---|---|---|---|---|---|---|---|");
  for (const std::string& d : b.drivers) {
    auto r = RunAlternating({b.direct[d].get(), b.via[d].get()}, streamed, b.plan.ttft_calls);
    const Samples &a = *r[1].ttft, &c = *r[0].ttft;
    b.out.Line("| ", d, " | ", Us(c.PercentileUs(50)), " | ", Us(c.PercentileUs(99)), " | ",
               Us(a.PercentileUs(50)), " | ", Us(a.PercentileUs(99)), " | ",
               DiffUs(a.PercentileUs(50), c.PercentileUs(50)), " | ",
               DiffUs(a.PercentileUs(99), c.PercentileUs(99)), " | ", r[0].errors + r[1].errors,
               " |");
    if (d == b.drivers.front() && a.count() > 0 && c.count() > 0) {
      b.head.added_ttft_p50 = *a.PercentileUs(50) - *c.PercentileUs(50);
    }
  }
  b.out.Line("");
}

void RelaySection(Bench& b) {
  b.Emu(0, 0, b.plan.relay_tokens);
  ChatSpec relay;
  relay.stream = true;
  relay.timeout = absl::Seconds(120);
  b.out.Line("## 4. Streamed chat: relay (completion tokens/s, ", b.plan.relay_tokens,
             "-token answers, median of ", b.plan.relay_rounds, " rounds, paths alternating)");
  b.out.Line("");
  b.out.Line("| driver | streams | direct tok/s | lmgate tok/s | lmgate / direct | lmgate CPU µs/token |");
  b.out.Line("|---|---|---|---|---|---|");
  for (const std::string& d : b.drivers) {
    for (int conc : {1, 8}) {
      // lmgate's CPU over its own rounds only: run them apart for the meter.
      auto direct = RunRelay({b.direct[d].get()}, relay, conc, b.plan.relay_rounds);
      CpuMeter cpu(b.lmgate->pid());
      auto via = RunRelay({b.via[d].get()}, relay, conc, b.plan.relay_rounds);
      const double tokens = static_cast<double>(b.plan.relay_tokens) * conc * via[0].size();
      const double dm = Median(direct[0]), gm = Median(via[0]);
      const double ratio = dm > 0 ? gm / dm : 0;
      b.out.Line("| ", d, " | ", conc, " | ", Num(dm), " | ", Num(gm), " | ", Num(ratio, 2), " | ",
                 tokens > 0 ? Num(cpu.lmgate() * 1e6 / tokens, 2) : "—", " |");
      if (d == b.drivers.front() && conc == 1 && dm > 0) b.head.relay_ratio = ratio;
    }
  }
  b.out.Line("");
}

void CancelSection(Bench& b) {
  b.Emu(0, 50, 100000);
  ChatSpec slow;
  slow.stream = true;
  slow.timeout = absl::Seconds(30);
  b.out.Line("## 5. Cancel: client cancel → the host's prediction stopped (µs; ",
             b.plan.cancel_calls, " per path; the host's counter is polled every ~50 µs)");
  b.out.Line("");
  b.out.Line("| driver | direct p50 | direct p99 | lmgate p50 | lmgate p99 | errors |");
  b.out.Line("|---|---|---|---|---|---|");
  for (const std::string& d : b.drivers) {
    auto r = RunCancel(*b.emu, {b.direct[d].get(), b.via[d].get()}, slow, b.plan.cancel_calls);
    b.out.Line("| ", d, " | ", Us(r[0].latency->PercentileUs(50)), " | ",
               Us(r[0].latency->PercentileUs(99)), " | ", Us(r[1].latency->PercentileUs(50)),
               " | ", Us(r[1].latency->PercentileUs(99)), " | ", ErrorsCell(r[0]), " / ",
               ErrorsCell(r[1]), " |");
  }
  b.out.Line("");
}

void StreamsSection(Bench& b) {
  b.Emu(3600 * 1000, 0, b.answer_tokens);  // every prediction waits in "prompt processing"
  const std::string& d = b.drivers.front();
  b.out.Line("## 6. Open streams through lmgate (driver ", d,
             "; each waits upstream for its first token; a fresh lmgate per row)");
  b.out.Line("");
  b.out.Line("| streams | open upstream | time to open s | lmgate RSS before MB | lmgate RSS MB | "
             "RSS per stream KB | CPU to open s | CPU while held % | threads | fds | RSS 3 s after "
             "cancel MB | cancel all → 0 upstream s | other errors |");
  b.out.Line("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (int n : b.plan.streams) {
    // A fresh process, so that its memory is the streams' and not what earlier sections left.
    auto fresh = StartLmgate(b.lmgate_argv);
    if (!fresh.ok()) {
      b.out.Line("| ", n, " | lmgate did not start: ", fresh.status().ToString(), " |");
      continue;
    }
    auto target = MakeGrpcTarget(fresh->channels, ProtoDriver(d), kModel);
    ChatSpec warm;
    warm.stream = false;
    warm.timeout = absl::Seconds(60);
    b.Emu(0, 0, b.answer_tokens);
    RunResult w = RunAlternating({target.get()}, warm, 20).front();
    b.Emu(3600 * 1000, 0, b.answer_tokens);
    if (w.ok == 0) {
      b.out.Line("| ", n, " | warm-up failed: ", w.first_error, " |");
      fresh->proc->Stop(absl::Seconds(30));
      continue;
    }
    StreamsResult s = RunOpenStreams(*b.emu, *target, fresh->proc->pid(), n,
                                     b.plan.full ? 2000 : 1000, b.plan.hold);
    const double per_stream_kb = (s.open.rss_mb - s.before.rss_mb) * 1024 / std::max(1, n);
    const double held_pct = 100 * (s.after_hold.cpu_seconds - s.open.cpu_seconds) /
                            absl::ToDoubleSeconds(b.plan.hold);
    b.out.Line("| ", n, " | ", s.opened, " | ", Num(s.open_seconds, 2), " | ",
               Num(s.before.rss_mb, 1), " | ", Num(s.open.rss_mb, 1), " | ",
               Num(per_stream_kb, 1), " | ", Num(s.open.cpu_seconds - s.before.cpu_seconds, 2),
               " | ", Num(held_pct, 1), " | ", s.open.threads, " | ", s.open.fds, " | ",
               Num(s.after_cancel.rss_mb, 1), " | ", Num(s.cancel_seconds, 2), " | ",
               s.errors_other_than_cancelled,
               s.first_error.empty() ? "" : absl::StrCat(" (", s.first_error.substr(0, 60), ")"),
               " |");
    if (n >= b.head.rss_streams) {
      b.head.rss_streams = n;
      b.head.rss_10k_mb = s.open.rss_mb;
    }
    target.reset();
    const int code = fresh->proc->Stop(absl::Seconds(30));
    if (code != 0) {
      std::fprintf(stderr, "lmgate (streams %d) exited with %d\n", n, code);
      ++b.unclean_exits;
    }
  }
  b.out.Line("");
  b.Emu(0, 0, b.answer_tokens);
}

void StartupSection(Bench& b, const StartupResult& startup, const ProcUsage& warm) {
  b.out.Line("## 7. Start-up and idle memory (", b.plan.startup_runs, " fresh lmgate processes)");
  b.out.Line("");
  b.out.Line("| spawn → liveness SERVING ms (p50) | spawn → readiness SERVING ms (p50) | RSS when "
             "ready MB | RSS after 1 s idle MB | RSS after warm-up MB |");
  b.out.Line("|---|---|---|---|---|");
  b.head.idle_rss_mb = Median(startup.rss_idle_mb);
  b.out.Line("| ", Num(startup.to_live->PercentileUs(50).value_or(0) / 1000, 1), " | ",
             Num(startup.to_ready->PercentileUs(50).value_or(0) / 1000, 1), " | ",
             Num(Median(startup.rss_ready_mb), 1), " | ", Num(*b.head.idle_rss_mb, 1), " | ",
             Num(warm.rss_mb, 1), " |");
  b.out.Line("");
}

void Summary(Bench& b) {
  auto cell = [](std::optional<double> v, const char* unit, int dec = 0) {
    return v ? absl::StrCat(Num(*v, dec), unit) : std::string("—");
  };
  const Headline& h = b.head;
  b.out.Line("## Beside published figures of other gateways");
  b.out.Line("");
  b.out.Line("| system | setup | added latency | memory |");
  b.out.Line("|---|---|---|---|");
  b.out.Line("| **lmgate (this run)** | ", sysconf(_SC_NPROCESSORS_ONLN),
             " shared cores with the load generator and the emulator, 2k req/s open loop, ",
             b.drivers.front(), " | p50 ", cell(h.added_p50_2k, " µs"), ", p99 ",
             cell(h.added_p99_2k, " µs"), "; lmgate's own CPU ",
             cell(h.lmgate_cpu_us_per_call, " µs"), " per call | ", cell(h.idle_rss_mb, " MB"),
             " idle; ", cell(h.rss_10k_mb, " MB"), " with ", h.rss_streams, " open streams |");
  b.out.Line("| TensorZero (Rust) | 4 vCPU, mock upstream, 10k QPS | p50 0.35 ms, p99 0.94 ms | — |");
  b.out.Line("| Bifrost (Go) | 2–4 vCPU, 5k RPS | 11–59 µs excl. JSON + HTTP call | 120 MB–3.3 GB |");
  b.out.Line("| GoModel (Go) | 2 vCPU, concurrency 10 | p50 1.8 ms, p99 6.9 ms, 4,900 req/s | 37 MB |");
  b.out.Line("| LiteLLM (Python) | 4 vCPU | 3–43 ms; fails near 1k QPS per box | up to 2.3 GB |");
  b.out.Line("| Envoy sidecar (Istio) | mesh | +2.65 ms p90 (two proxies) | 40 MB per 1k RPS |");
  b.out.Line("| Triton | perf_analyzer | 36 µs server overhead + 42 µs queue | — |");
  b.out.Line("");
  b.out.Line("Published figures are the vendors' own, on other machines and workloads; none of "
             "them publishes streaming overhead.");
  b.out.Line("");
  b.out.Line("## Targets (2 cores)");
  b.out.Line("");
  b.out.Line("| target | goal | this run |");
  b.out.Line("|---|---|---|");
  b.out.Line("| added latency p50 at 2k req/s | ≤ 60 µs | ", cell(h.added_p50_2k, " µs"), " |");
  b.out.Line("| added latency p99 at 2k req/s | ≤ 300 µs | ", cell(h.added_p99_2k, " µs"), " |");
  b.out.Line("| added time to first token (p50) | ≤ 150 µs | ", cell(h.added_ttft_p50, " µs"),
             " |");
  b.out.Line("| relay throughput vs direct (1 stream) | ≥ 0.9 | ", cell(h.relay_ratio, "", 2),
             " |");
  b.out.Line("| lmgate RSS with ", h.rss_streams, " idle streams | ≤ 250 MB (10k) | ",
             cell(h.rss_10k_mb, " MB"), " |");
  b.out.Line("");
}

int Run() {
  Bench b;
  b.plan = MakePlan();
  b.answer_tokens = absl::GetFlag(FLAGS_answer_tokens);
  b.drivers = absl::StrSplit(absl::GetFlag(FLAGS_drivers), ',', absl::SkipEmpty());
  std::vector<std::string> only = absl::StrSplit(absl::GetFlag(FLAGS_only), ',', absl::SkipEmpty());
  auto want = [&](const char* s) {
    return only.empty() || std::find(only.begin(), only.end(), s) != only.end();
  };

  emulator::Options eo;
  eo.settings.ttft_ms = 0;
  eo.settings.tokens_per_second = 0;
  eo.settings.default_parallel = 1000000;  // no upstream queueing: the host is "infinitely" wide
  eo.settings.min_response_tokens = eo.settings.max_response_tokens = b.answer_tokens;
  auto emu_or = emulator::Emulator::Create(eo);
  if (!emu_or.ok()) {
    std::fprintf(stderr, "emulator: %s\n", emu_or.status().ToString().c_str());
    return 1;
  }
  b.emu = emu_or->get();
  const std::string config = WriteConfig(b.emu->http_url());
  const std::vector<std::string> argv = {absl::GetFlag(FLAGS_lmgate_bin), "--config=" + config};

  b.out.Line("# lmgate benchmark (", b.plan.full ? "--full" : "--short", ")");
  b.out.Line("");
  b.out.Line("Machine: ", sysconf(_SC_NPROCESSORS_ONLN), " cores (", CpuModel(),
             "), shared with other work: figures are noisy. Load average at start: ", LoadAvg(),
             ".");
  b.out.Line("lmgate: a subprocess (", argv[0], "), drivers sdk_ws/rest/openai, no API keys, "
             "admission unlimited, metrics collected (no endpoint). Emulator: inside the load "
             "generator's process, ttft 0, tokens_per_second 0 (as fast as possible). 'direct' = "
             "lmgate's own driver library in the load generator talking to the emulator; "
             "'added' = lmgate − direct at the same percentile.");
  b.out.Line("");

  // Start-up first, on a quiet process table.
  StartupResult startup;
  if (want("startup")) {
    startup = RunStartup(argv, b.plan.startup_runs, absl::Seconds(1));
    if (!startup.error.empty()) {
      std::fprintf(stderr, "start-up: %s\n", startup.error.c_str());
      return 1;
    }
  }

  auto lmgate_or = StartLmgate(argv);
  if (!lmgate_or.ok()) {
    std::fprintf(stderr, "%s\n", lmgate_or.status().ToString().c_str());
    return 1;
  }
  b.lmgate_argv = argv;
  b.lmgate = lmgate_or->proc.get();
  const auto& channels = lmgate_or->channels;
  for (const std::string& d : b.drivers) {
    b.via[d] = MakeGrpcTarget(channels, ProtoDriver(d), kModel);
    auto t = MakeDirectTarget(d, b.emu->http_url(), kModel);
    if (!t.ok()) {
      std::fprintf(stderr, "direct %s: %s\n", d.c_str(), t.status().ToString().c_str());
      return 1;
    }
    b.direct[d] = *std::move(t);
  }
  // Warm-up: the first call through lmgate loads the model; then every path a few times.
  ChatSpec warm;
  warm.stream = false;
  warm.timeout = absl::Seconds(60);
  for (const std::string& d : b.drivers) {
    for (const RunResult& r : RunAlternating({b.via[d].get(), b.direct[d].get()}, warm, 50)) {
      if (r.ok == 0) {
        std::fprintf(stderr, "warm-up through %s failed: %s\n%s\n", d.c_str(),
                     r.first_error.c_str(), b.lmgate->Tail().c_str());
        return 1;
      }
    }
  }
  const ProcUsage warm_usage = ReadProcUsage(b.lmgate->pid()).value_or(ProcUsage{});

  if (want("unary")) UnarySection(b);
  if (want("capacity")) CapacitySection(b);
  if (want("ttft")) TtftSection(b);
  if (want("relay")) RelaySection(b);
  if (want("cancel")) CancelSection(b);
  if (want("streams")) StreamsSection(b);
  if (want("startup")) StartupSection(b, startup, warm_usage);
  Summary(b);
  b.out.Line("Load average at the end: ", LoadAvg(), ".");

  const int code = b.lmgate->Stop(absl::Seconds(30));
  if (code != 0) std::fprintf(stderr, "lmgate exited with %d on SIGTERM\n", code);
  unlink(config.c_str());
  if (!absl::GetFlag(FLAGS_report).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_report)) << b.out.text();
  }
  return code == 0 && b.unclean_exits == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lmgate::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lmgate_bench: chat latency, time to first token, relay throughput, open streams, cancel "
      "and start-up, direct to the LM Studio emulator and through lmgate.\n"
      "  lmgate_bench [--short|--full] [--lmgate_bin=PATH] [--report=FILE]");
  // As in lmgate's main: Debian's Abseil tracks lock order on every Lock unless told not to.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  return lmgate::bench::Run();
}
