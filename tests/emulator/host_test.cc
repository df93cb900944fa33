// White-box tests of the Host (no network): lifecycle, JIT, TTL, slots, cut-offs, cancellation.
#include "tests/emulator/model_host.h"

#include <thread>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "tests/emulator/test_client.h"
#include "tests/util/time_scale.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::WaitFor;

Settings Fast() {
  Settings s;
  s.ttft_ms = 0;
  s.tokens_per_second = 0;
  s.load_ms_per_gb = 2;
  return s;
}

struct Recorder : LoadObserver {
  std::vector<double> progress;
  std::vector<std::string> events;
  void OnResolved(const json&) override { events.push_back("resolved"); }
  void OnAlreadyLoaded(const json&) override { events.push_back("alreadyLoaded"); }
  void OnStartLoading(const std::string& id, const json&) override {
    events.push_back("startLoading:" + id);
  }
  void OnUnloadingOther(const json& info) override {
    events.push_back("unloadingOther:" + info["identifier"].get<std::string>());
  }
  void OnProgress(double p) override { progress.push_back(p); }
  void OnLoaded(const json&) override { events.push_back("loaded"); }
};

struct Collect : PredictionObserver {
  std::string text;
  int fragments = 0;
  PredictionResult result;
  std::function<void(int)> on_fragment;
  void OnFragment(const Fragment& f) override {
    text += f.content;
    ++fragments;
    if (on_fragment) on_fragment(fragments);
  }
  void OnDone(const PredictionResult& r) override { result = r; }
};

PredictionRequest Chat(const std::string& user) {
  PredictionRequest r;
  r.prompt.messages = {{"user", user}};
  return r;
}

absl::StatusOr<InstanceHandle> Load(Host& h, const std::string& key,
                                    std::optional<std::string> id = std::nullopt,
                                    std::optional<int64_t> ttl = std::nullopt, int parallel = 0,
                                    int64_t ctx = 0, LoadObserver* obs = nullptr) {
  LoadRequest r;
  r.model = key;
  r.identifier = id;
  r.ttl_ms = ttl;
  if (parallel > 0) r.config.Set("llm.load.numParallelSessions", parallel);
  if (ctx > 0) r.config.Set("llm.load.contextLength", ctx);
  Job job;
  return h.Load(r, obs, &job);
}

TEST(Host, LoadProgressAndInstanceIdentifiers) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  Recorder rec;
  auto a = Load(h, "qwen/qwen3-4b", std::nullopt, std::nullopt, 0, 8192, &rec);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(rec.progress, (std::vector<double>{0.25, 0.5, 0.75, 1.0}));
  EXPECT_EQ(rec.events, (std::vector<std::string>{"resolved", "loaded"}));
  EXPECT_EQ(h.Identifier(*a), "qwen/qwen3-4b");
  EXPECT_EQ(h.ContextLength(*a), 8192);
  auto b = Load(h, "qwen/qwen3-4b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(h.Identifier(*b), "qwen/qwen3-4b:2");
  auto c = Load(h, "qwen/qwen3-4b", "mine");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(h.Identifier(*c), "mine");
  EXPECT_EQ(Load(h, "google/gemma-3-1b", "mine").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Load(h, "no/such").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h.ListLoaded("llm").size(), 3u);
  ASSERT_TRUE(h.Unload("qwen/qwen3-4b").ok());
  EXPECT_EQ(h.Identifier(*Load(h, "qwen/qwen3-4b")), "qwen/qwen3-4b");  // lowest free name
  json stats = h.Stats();
  EXPECT_EQ(stats["loads_started"], 4);  // the duplicate and the unknown key never started
  EXPECT_EQ(stats["loads_finished"], 4);
  EXPECT_EQ(stats["unloads"], 1);
}

TEST(Host, IdleTtlExpiresAndBusyModelsAreNotIdle) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  // 40 ms at full speed; the gap between Load returning and Predict starting must stay below it.
  const int64_t ttl_ms = absl::ToInt64Milliseconds(testutil::Scaled(absl::Milliseconds(40)));
  ASSERT_TRUE(Load(h, "google/gemma-3-1b", std::nullopt, ttl_ms).ok());
  EXPECT_TRUE(WaitFor([&] { return h.ListLoaded("").empty(); }));
  EXPECT_EQ(h.Stats()["ttl_unloads"], 1);

  auto inst = Load(h, "google/gemma-3-1b", std::nullopt, ttl_ms);
  ASSERT_TRUE(inst.ok());
  ASSERT_TRUE(h.ApplyFaults({{"stall", {{"after_fragments", 1}, {"ms", -1}}}}).ok());
  auto job = h.NewJob();
  Collect obs;
  std::thread t([&] { ASSERT_TRUE(h.Predict(*inst, Chat("hi"), &obs, job.get()).ok()); });
  ASSERT_TRUE(WaitFor([&] { return h.Stats()["predictions_active"] == 1; }));
  // Well past the TTL while the prediction is stalled: still loaded.
  EXPECT_FALSE(WaitFor([&] { return h.ListLoaded("").empty(); }, absl::Milliseconds(150)));
  h.Cancel(*job);
  t.join();
  EXPECT_EQ(obs.result.stats.stop_reason, "userStopped");
  EXPECT_TRUE(WaitFor([&] { return h.ListLoaded("").empty(); }));
}

TEST(Host, JitLoadsAutoEvictAndSingleFlight) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  ASSERT_TRUE(Load(h, "text-embedding-bge-small-en-v1.5").ok());  // explicit: never evicted
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      Job job;
      if (h.ResolveForInference("qwen/qwen3-4b", "llm", 5000, nullptr, &job).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(h.Stats()["loads_started"], 2);  // one explicit + one JIT load for four requests
  Recorder rec;
  Job job;
  auto gemma = h.ResolveForInference("google/gemma-3-1b", "llm", std::nullopt, &rec, &job);
  ASSERT_TRUE(gemma.ok());
  EXPECT_EQ(rec.events, (std::vector<std::string>{"unloadingOther:qwen/qwen3-4b",
                                                  "startLoading:google/gemma-3-1b", "loaded"}));
  json loaded = h.ListLoaded("");
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(h.InstanceInfo(*gemma)["ttlMs"], 3600000);  // JIT default TTL
}

TEST(Host, JitDisabledErrors) {
  Settings s = Fast();
  s.jit_enabled = false;
  Host h(Catalogue::BuiltIn(), s, Faults());
  Job job;
  auto r = h.ResolveForInference("qwen/qwen3-4b", "llm", std::nullopt, nullptr, &job);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetPayload(r.status(), kPayloadHttpStatus), "400");
  EXPECT_NE(r.status().message().find("No models loaded"), std::string::npos);
  ASSERT_TRUE(Load(h, "google/gemma-3-1b").ok());
  r = h.ResolveForInference("qwen/qwen3-4b", "llm", std::nullopt, nullptr, &job);
  EXPECT_EQ(GetPayload(r.status(), kPayloadErrorCode), "model_not_found");
  EXPECT_TRUE(h.ResolveForInference("google/gemma-3-1b", "llm", std::nullopt, nullptr, &job).ok());
  EXPECT_TRUE(h.ResolveForInference("", "llm", std::nullopt, nullptr, &job).ok());
}

TEST(Host, ParallelSlotsQueueFifo) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  auto inst = Load(h, "google/gemma-3-1b", std::nullopt, std::nullopt, /*parallel=*/2);
  ASSERT_TRUE(inst.ok());
  absl::Notification release;
  struct Blocking : Collect {
    absl::Notification* release;
    void OnPromptProgress(double p, int64_t) override {
      if (p == 0) release->WaitForNotification();
    }
  };
  std::vector<Blocking> obs(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    obs[i].release = &release;
    threads.emplace_back([&, i] {
      Job job;
      ASSERT_TRUE(h.Predict(*inst, Chat("hello"), &obs[i], &job).ok());
    });
  }
  ASSERT_TRUE(WaitFor([&] { return h.ProcessingState(*inst)["queued"] == 1; }));
  EXPECT_EQ(h.ProcessingState(*inst)["status"], "processingPrompt");
  EXPECT_EQ(h.Stats()["predictions_active"], 3);
  release.Notify();
  for (auto& t : threads) t.join();
  for (auto& o : obs) EXPECT_EQ(o.result.stats.stop_reason, "eosFound");
  EXPECT_EQ(h.ProcessingState(*inst)["status"], "idle");
  EXPECT_EQ(h.Stats()["predictions_finished"], 3);
}

TEST(Host, CancelStopsPromptly) {
  Settings s = Fast();
  s.tokens_per_second = 2;  // 500 ms per token: a cancel must not wait for the next one
  Host h(Catalogue::BuiltIn(), s, Faults());
  auto inst = Load(h, "google/gemma-3-1b");
  auto job = h.NewJob();
  Collect obs;
  obs.on_fragment = [&](int) { h.Cancel(*job); };
  const absl::Time start = absl::Now();
  ASSERT_TRUE(h.Predict(*inst, Chat("Tell me a long story."), &obs, job.get()).ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_EQ(obs.result.stats.stop_reason, "userStopped");
  EXPECT_EQ(obs.result.stats.predicted_tokens, 1);
  json stats = h.Stats();
  EXPECT_EQ(stats["predictions_cancelled"], 1);
  EXPECT_EQ(stats["predictions_active"], 0);
}

TEST(Host, StopStringsMaxTokensAndContext) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  auto inst = Load(h, "google/gemma-3-1b", std::nullopt, std::nullopt, 0, 64);
  Job job;
  Collect full;
  ASSERT_TRUE(h.Predict(*inst, Chat("hello"), &full, &job).ok());
  const std::string& text = full.result.content;
  ASSERT_GT(text.size(), 20u);
  const std::string stop = text.substr(text.size() / 2, 4);
  PredictionRequest req = Chat("hello");
  req.stop_strings = {stop};
  Collect cut;
  ASSERT_TRUE(h.Predict(*inst, req, &cut, &job).ok());
  EXPECT_EQ(cut.result.stats.stop_reason, "stopStringFound");
  EXPECT_EQ(cut.result.stats.stop_string, stop);
  EXPECT_EQ(cut.result.content, text.substr(0, text.find(stop)));
  EXPECT_EQ(cut.text, cut.result.content);

  req = Chat("hello");
  req.max_tokens = 3;
  Collect max;
  ASSERT_TRUE(h.Predict(*inst, req, &max, &job).ok());
  EXPECT_EQ(max.result.stats.stop_reason, "maxPredictedTokensReached");
  EXPECT_EQ(max.result.stats.predicted_tokens, 3);

  req = Chat("hello");
  req.overflow_policy = "stopAtLimit";
  Collect ctx;
  ASSERT_TRUE(h.Predict(*inst, req, &ctx, &job).ok());
  if (full.result.stats.prompt_tokens + full.result.stats.predicted_tokens >= 64) {
    EXPECT_EQ(ctx.result.stats.stop_reason, "contextLengthReached");
    EXPECT_EQ(ctx.result.stats.prompt_tokens + ctx.result.stats.predicted_tokens, 64);
  }
  req = Chat(std::string(400, 'a') + " " + std::string(200, ' ') + "many words here and more");
  for (int i = 0; i < 60; ++i) req.prompt.messages[0].text += " word";
  req.overflow_policy = "stopAtLimit";
  Collect over;
  EXPECT_EQ(h.Predict(*inst, req, &over, &job).code(), absl::StatusCode::kInvalidArgument);
  req.overflow_policy = "truncateMiddle";
  ASSERT_TRUE(h.Predict(*inst, req, &over, &job).ok());
  EXPECT_EQ(over.result.stats.stop_reason, "eosFound");
}

TEST(Host, FailedAndCancelledLoads) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  ASSERT_TRUE(h.ApplyFaults({{"fail_next_loads", 1}}).ok());
  EXPECT_EQ(Load(h, "google/gemma-3-1b").status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(Load(h, "google/gemma-3-1b").ok());
  ASSERT_TRUE(h.ApplyFaults({{"load_time_multiplier", 40}}).ok());  // ~200 ms load
  auto job = h.NewJob();
  struct CancelOnProgress : LoadObserver {
    Host* h;
    Job* job;
    void OnProgress(double) override { h->Cancel(*job); }
  } obs;
  obs.h = &h;
  obs.job = job.get();
  LoadRequest r;
  r.model = "qwen/qwen3-4b";
  EXPECT_EQ(h.Load(r, &obs, job.get()).status().code(), absl::StatusCode::kCancelled);
  json stats = h.Stats();
  EXPECT_EQ(stats["loads_failed"], 1);
  EXPECT_EQ(stats["loads_cancelled"], 1);
  EXPECT_EQ(h.ListLoaded("").size(), 1u);
}

TEST(Host, UnloadDuringPredictionEndsWithModelUnloaded) {
  Host h(Catalogue::BuiltIn(), Fast(), Faults());
  auto inst = Load(h, "google/gemma-3-1b");
  Job job;
  Collect obs;
  obs.on_fragment = [&](int n) {
    if (n == 2) {
      ASSERT_TRUE(h.Unload("google/gemma-3-1b").ok());
    }
  };
  ASSERT_TRUE(h.Predict(*inst, Chat("hi"), &obs, &job).ok());
  EXPECT_EQ(obs.result.stats.stop_reason, "modelUnloaded");
  EXPECT_EQ(h.Predict(*inst, Chat("hi"), &obs, &job).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lmgate::emulator
