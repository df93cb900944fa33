#include "tests/bench/scenarios.h"

#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/emulator/emulator.h"

namespace lmgate::bench {
namespace {

// Absolute sleep with 1 ns timer slack (the default 50 µs would blur a 200 µs schedule).
void SleepUntil(absl::Time t) {
  static thread_local bool slack_set = [] {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    return true;
  }();
  (void)slack_set;
  const timespec ts = absl::ToTimespec(t);
  while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

int PredictionsActive(emulator::Emulator& emu) {
  return emu.Stats()["predictions_active"].get<int>();
}

// Polls `pred` every `every` until true or `timeout`; returns whether it became true.
template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout, absl::Duration every = absl::Microseconds(50)) {
  const absl::Time until = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(every);
  }
  return true;
}

// Counters shared with the callbacks of a run (which may outlive it after a timeout).
struct Tally {
  absl::Mutex mu;
  RunResult r ABSL_GUARDED_BY(mu);
  int64_t outstanding ABSL_GUARDED_BY(mu) = 0;
  absl::Time last_done ABSL_GUARDED_BY(mu);
  int64_t cancelled ABSL_GUARDED_BY(mu) = 0;

  void Done(const absl::Status& st, int tokens, absl::Time at) {
    absl::MutexLock lock(&mu);
    --outstanding;
    last_done = std::max(last_done, at);
    if (st.ok()) {
      ++r.ok;
      r.tokens += tokens;
    } else {
      ++r.errors;
      if (st.code() == absl::StatusCode::kCancelled) {
        ++cancelled;
      } else if (r.first_error.empty()) {
        r.first_error = st.ToString();
      }
    }
  }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return outstanding == 0; }
};

}  // namespace

RunResult RunOpenLoop(ChatTarget& target, const ChatSpec& spec, double rate,
                      absl::Duration duration, int64_t max_outstanding) {
  auto tally = std::make_shared<Tally>();
  const absl::Duration interval = absl::Seconds(1.0 / rate);
  const int64_t total = static_cast<int64_t>(absl::FDivDuration(duration, interval));
  const absl::Time start = absl::Now() + absl::Milliseconds(2);
  std::shared_ptr<Samples> latency, ttft, lag;
  {
    absl::MutexLock lock(&tally->mu);
    latency = tally->r.latency;
    ttft = tally->r.ttft;
    lag = tally->r.pacing_lag;
  }
  for (int64_t i = 0; i < total; ++i) {
    const absl::Time intended = start + i * interval;
    SleepUntil(intended);
    const absl::Time sent = absl::Now();
    lag->Add(sent - intended);
    {
      absl::MutexLock lock(&tally->mu);
      if (tally->outstanding >= max_outstanding) {
        ++tally->r.skipped;
        continue;
      }
      ++tally->outstanding;
      ++tally->r.sent;
    }
    ChatCallbacks cb;
    cb.on_first_token = [ttft, sent](absl::Time at) { ttft->Add(at - sent); };
    cb.on_done = [tally, latency, sent](const absl::Status& st, int tokens, absl::Time at) {
      if (st.ok()) latency->Add(at - sent);
      tally->Done(st, tokens, at);
    };
    target.Start(spec, std::move(cb));
  }
  absl::MutexLock lock(&tally->mu);
  tally->mu.AwaitWithTimeout(absl::Condition(tally.get(), &Tally::Idle),
                             spec.timeout + absl::Seconds(10));
  RunResult r = tally->r;
  r.errors += tally->outstanding;  // never answered
  r.seconds = absl::ToDoubleSeconds(std::max(tally->last_done, start) - start);
  return r;
}

RunResult RunClosedLoop(ChatTarget& target, const ChatSpec& spec, int callers,
                        absl::Duration duration) {
  auto tally = std::make_shared<Tally>();
  std::shared_ptr<Samples> latency;
  {
    absl::MutexLock lock(&tally->mu);
    latency = tally->r.latency;
  }
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&] {
      while (absl::Now() < end) {
        absl::Notification done;
        const absl::Time sent = absl::Now();
        {
          absl::MutexLock lock(&tally->mu);
          ++tally->outstanding;
          ++tally->r.sent;
        }
        ChatCallbacks cb;
        cb.on_done = [&, sent](const absl::Status& st, int tokens, absl::Time at) {
          if (st.ok()) latency->Add(at - sent);
          tally->Done(st, tokens, at);
          done.Notify();
        };
        target.Start(spec, std::move(cb));
        done.WaitForNotification();
      }
    });
  }
  for (auto& t : threads) t.join();
  absl::MutexLock lock(&tally->mu);
  RunResult r = tally->r;
  r.seconds = absl::ToDoubleSeconds(tally->last_done - start);
  return r;
}

std::vector<RunResult> RunAlternating(const std::vector<ChatTarget*>& targets,
                                      const ChatSpec& spec, int calls_each) {
  std::vector<RunResult> out(targets.size());
  for (int i = 0; i < calls_each; ++i) {
    for (size_t t = 0; t < targets.size(); ++t) {
      absl::Notification done;
      absl::Status status;
      int tokens = 0;
      absl::Time first = absl::InfinitePast(), end;
      ChatCallbacks cb;
      cb.on_first_token = [&](absl::Time at) { first = at; };
      cb.on_done = [&](const absl::Status& st, int n, absl::Time at) {
        status = st;
        tokens = n;
        end = at;
        done.Notify();
      };
      const absl::Time sent = absl::Now();
      auto call = targets[t]->Start(spec, std::move(cb));
      done.WaitForNotification();
      RunResult& r = out[t];
      ++r.sent;
      if (!status.ok()) {
        ++r.errors;
        if (r.first_error.empty()) r.first_error = status.ToString();
        continue;
      }
      ++r.ok;
      r.tokens += tokens;
      r.latency->Add(end - sent);
      if (first != absl::InfinitePast()) r.ttft->Add(first - sent);
    }
  }
  return out;
}

std::vector<std::vector<double>> RunRelay(const std::vector<ChatTarget*>& targets,
                                          const ChatSpec& spec, int concurrency, int rounds) {
  std::vector<std::vector<double>> out(targets.size());
  for (int round = 0; round < rounds; ++round) {
    for (size_t t = 0; t < targets.size(); ++t) {
      auto tally = std::make_shared<Tally>();
      const absl::Time start = absl::Now();
      {
        absl::MutexLock lock(&tally->mu);
        tally->outstanding = concurrency;
      }
      for (int i = 0; i < concurrency; ++i) {
        ChatCallbacks cb;
        cb.on_done = [tally](const absl::Status& st, int n, absl::Time at) {
          tally->Done(st, n, at);
        };
        targets[t]->Start(spec, std::move(cb));
      }
      absl::MutexLock lock(&tally->mu);
      tally->mu.AwaitWithTimeout(absl::Condition(tally.get(), &Tally::Idle),
                                 spec.timeout + absl::Seconds(5));
      const double secs = absl::ToDoubleSeconds(tally->last_done - start);
      if (tally->r.errors == 0 && tally->outstanding == 0 && secs > 0) {
        out[t].push_back(static_cast<double>(tally->r.tokens) / secs);
      } else {
        std::fprintf(stderr, "relay %s: %lld errors (%s)\n", targets[t]->name().c_str(),
                     static_cast<long long>(tally->r.errors), tally->r.first_error.c_str());
      }
    }
  }
  return out;
}

std::vector<RunResult> RunCancel(emulator::Emulator& emu, const std::vector<ChatTarget*>& targets,
                                 const ChatSpec& spec, int calls_each) {
  std::vector<RunResult> out(targets.size());
  for (int i = 0; i < calls_each; ++i) {
    for (size_t t = 0; t < targets.size(); ++t) {
      RunResult& r = out[t];
      ++r.sent;
      if (!PollUntil([&] { return PredictionsActive(emu) == 0; }, absl::Seconds(10))) {
        ++r.errors;
        r.first_error = "a prediction was still active upstream before the call";
        continue;
      }
      // Shared with the callbacks: a call that outlives its wait below must not touch this frame.
      struct State {
        absl::Notification first, done;
        absl::Status status;
      };
      auto state = std::make_shared<State>();
      ChatCallbacks cb;
      cb.on_first_token = [state](absl::Time) {
        if (!state->first.HasBeenNotified()) state->first.Notify();
      };
      cb.on_done = [state](const absl::Status& st, int, absl::Time) {
        state->status = st;
        if (!state->first.HasBeenNotified()) state->first.Notify();
        state->done.Notify();
      };
      auto call = targets[t]->Start(spec, std::move(cb));
      state->first.WaitForNotificationWithTimeout(absl::Seconds(10));
      const absl::Time t0 = absl::Now();
      call->Cancel();
      const bool stopped =
          PollUntil([&] { return PredictionsActive(emu) == 0; }, absl::Seconds(10));
      const absl::Time t1 = absl::Now();
      const bool ended = state->done.WaitForNotificationWithTimeout(absl::Seconds(10));
      if (!stopped || !ended || state->status.code() != absl::StatusCode::kCancelled) {
        ++r.errors;
        if (r.first_error.empty()) {
          r.first_error = !stopped ? "the upstream prediction kept running"
                          : !ended ? "the call did not end after Cancel()"
                                   : absl::StrCat("call ended with ", state->status.ToString());
        }
        continue;
      }
      ++r.ok;
      r.latency->Add(t1 - t0);
    }
  }
  return out;
}

StreamsResult RunOpenStreams(emulator::Emulator& emu, ChatTarget& lmgate, pid_t lmgate_pid, int n,
                             double open_rate, absl::Duration hold) {
  StreamsResult res;
  res.n = n;
  PollUntil([&] { return PredictionsActive(emu) == 0; }, absl::Seconds(10));
  res.before = ReadProcUsage(lmgate_pid).value_or(ProcUsage{});
  auto tally = std::make_shared<Tally>();
  {
    absl::MutexLock lock(&tally->mu);
    tally->outstanding = n;
  }
  ChatSpec spec;
  spec.stream = true;
  spec.timeout = absl::Minutes(10);
  std::vector<std::unique_ptr<ChatCall>> calls;
  calls.reserve(n);
  const absl::Time start = absl::Now();
  const absl::Duration interval = absl::Seconds(1.0 / open_rate);
  for (int i = 0; i < n; ++i) {
    SleepUntil(start + i * interval);
    ChatCallbacks cb;
    cb.on_done = [tally](const absl::Status& st, int tokens, absl::Time at) {
      tally->Done(st, tokens, at);
    };
    calls.push_back(lmgate.Start(spec, std::move(cb)));
  }
  int peak = 0;
  PollUntil(
      [&] {
        peak = PredictionsActive(emu);
        absl::MutexLock lock(&tally->mu);
        return peak >= n || tally->outstanding == 0;
      },
      absl::Seconds(120), absl::Milliseconds(5));
  res.opened = peak;
  res.open_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  res.open = ReadProcUsage(lmgate_pid).value_or(ProcUsage{});
  absl::SleepFor(hold);
  res.after_hold = ReadProcUsage(lmgate_pid).value_or(ProcUsage{});
  const absl::Time t0 = absl::Now();
  for (auto& c : calls) c->Cancel();
  PollUntil([&] { return PredictionsActive(emu) == 0; }, absl::Seconds(120),
            absl::Milliseconds(1));
  res.cancel_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  {
    absl::MutexLock lock(&tally->mu);
    tally->mu.AwaitWithTimeout(absl::Condition(tally.get(), &Tally::Idle), absl::Seconds(60));
    res.errors_other_than_cancelled = static_cast<int>(
        tally->r.ok + tally->r.errors - tally->cancelled + tally->outstanding);
    res.first_error = tally->r.first_error;
  }
  calls.clear();
  // Not a synchronisation: lmgate returns freed heap every health interval (2 s); the figure is
  // what it keeps after that.
  absl::SleepFor(absl::Seconds(3));
  res.after_cancel = ReadProcUsage(lmgate_pid).value_or(ProcUsage{});
  return res;
}

int ParseListenPort(const std::string& line) {
  const size_t colon = line.find(':', line.find("listening on "));
  if (colon == std::string::npos) return -1;
  return std::atoi(line.c_str() + colon + 1);
}

StartupResult RunStartup(const std::vector<std::string>& argv, int runs, absl::Duration settle) {
  StartupResult res;
  for (int i = 0; i < runs; ++i) {
    auto p = Subprocess::Start(argv);
    if (!p.ok()) {
      res.error = p.status().ToString();
      return res;
    }
    auto line = (*p)->WaitForLine("lmgate listening on", absl::Seconds(30));
    if (!line.ok()) {
      res.error = absl::StrCat(line.status().ToString(), "\n", (*p)->Tail());
      return res;
    }
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", ParseListenPort(*line)),
                                       grpc::InsecureChannelCredentials());
    auto health = grpc::health::v1::Health::NewStub(channel);
    auto serving = [&](const char* service) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(service);
      grpc::health::v1::HealthCheckResponse resp;
      return health->Check(&ctx, req, &resp).ok() &&
             resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    };
    const pid_t pid = (*p)->pid();
    if (!PollUntil([&] { return serving(""); }, absl::Seconds(30), absl::Microseconds(200))) {
      res.error = "liveness never SERVING";
      return res;
    }
    res.to_live->Add(absl::Now() - (*p)->started());
    if (!PollUntil([&] { return serving("lmgate.v1.Inference"); }, absl::Seconds(30),
                   absl::Microseconds(200))) {
      res.error = "readiness never SERVING";
      return res;
    }
    res.to_ready->Add(absl::Now() - (*p)->started());
    res.rss_ready_mb.push_back(ReadProcUsage(pid).value_or(ProcUsage{}).rss_mb);
    absl::SleepFor(settle);
    res.rss_idle_mb.push_back(ReadProcUsage(pid).value_or(ProcUsage{}).rss_mb);
    const int code = (*p)->Stop(absl::Seconds(10));
    if (code != 0 && res.error.empty()) res.error = absl::StrCat("lmgate exited with ", code);
  }
  return res;
}

}  // namespace lmgate::bench
