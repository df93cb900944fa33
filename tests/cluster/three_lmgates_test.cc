// Issue 14: three real lmgate processes (A, B, C) in front of one LM Studio emulator, sharing one
// redis-server (cluster.redis_url), behave as one gateway on tenant quotas:
// - requests_per_minute 10 → exactly 10 admitted across A/B/C (embedded mode admits 30);
// - concurrent_streams 2 → exactly 2 running across A/B/C;
// - kill -9 of a gateway mid-stream: its stream permit lapses within 3 heartbeats and another
//   gateway gets the slot;
// - Redis stopped: on_redis_error=open admits, =closed refuses UNAVAILABLE naming Redis, a tenant
//   without limits is served either way (the loaded model keeps serving); Redis back (empty):
//   exact again without a restart;
// - lifecycle events made through B (LOAD_STARTED, LOAD_PROGRESS, LOADED, UNLOADED) reach
//   WatchModels on A within 100 ms, as themselves; A's own sync, finding B's instance later,
//   adds no EXTERNAL_CHANGE.
// Waits are on stream messages and process output, or poll a condition with a deadline.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/bench/scenarios.h"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::Scaled;

constexpr char kModel[] = "qwen/qwen3-4b";
constexpr char kTeamKey[] = "cluster-team-key-5f1c9a7e3b";
constexpr char kFreeKey[] = "cluster-free-key-8d2e6b4a0c";
constexpr double kHeartbeatSeconds = 0.2;

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

template <typename Fn>
bool Eventually(Fn cond, absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));  // polling interval, not synchronisation
  }
  return cond();
}

struct Gateway {
  std::unique_ptr<bench::Subprocess> process;
  std::string config;
  std::unique_ptr<v1::Inference::Stub> stub;
  std::unique_ptr<v1::ModelManager::Stub> models;
};

// A Chat stream held open: admitted once its first message arrived.
struct HeldStream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> reader;
  bool admitted = false;
  grpc::Status status;  // when not admitted
};

class ThreeLmgatesTest : public testing::Test {
 protected:
  void SetUp() override {
    setenv("CLUSTER_TEST_TEAM_KEY", kTeamKey, 1);
    setenv("CLUSTER_TEST_FREE_KEY", kFreeKey, 1);
    auto redis = testutil::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    emulator::Options eo;
    eo.settings.ttft_ms = 5;
    eo.settings.tokens_per_second = 200;
    eo.settings.max_response_tokens = 4000;
    auto emu = emulator::Emulator::Create(eo);
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = *std::move(emu);
  }

  void TearDown() override {
    for (auto& g : gateways_) {
      if (g.process) g.process->Stop(Scaled(absl::Seconds(20)));
      if (!g.config.empty()) unlink(g.config.c_str());
    }
  }

  // Starts one lmgate; `team` are the team key's limits, `cluster` overlays the cluster section
  // (null = embedded mode).
  void StartGateway(const nlohmann::json& team, const nlohmann::json& cluster) {
    nlohmann::json team_key = {{"tenant", "team"}, {"key_env", "CLUSTER_TEST_TEAM_KEY"}};
    team_key.update(team);
    nlohmann::json c = {
        {"listen", "127.0.0.1:0"},
        {"lmstudio", {{"url", emu_->http_url()}, {"connect_timeout_seconds", 1}}},
        {"drivers", {"sdk_ws", "rest", "openai"}},
        {"default_model", kModel},
        {"metrics_listen", ""},
        {"log_level", "warn"},
        {"shutdown_grace_seconds", 1},
        {"refresh_interval_seconds", 1},
        {"keys",
         {team_key,
          {{"tenant", "free"},
           {"key_env", "CLUSTER_TEST_FREE_KEY"},
           {"roles", {"inference", "admin"}}}}}};
    if (!cluster.is_null()) {
      nlohmann::json cl = {{"redis_url", redis_->url()},
                           {"heartbeat_seconds", kHeartbeatSeconds},
                           {"command_timeout_seconds", 0.2 * testutil::TimeScale()}};
      cl.update(cluster);
      c["cluster"] = cl;
    }
    char path[] = "/tmp/lmgate-cluster.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = c.dump();
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    Gateway g;
    g.config = path;
    auto p = bench::Subprocess::Start({"services/lmgate", "--config=" + g.config});
    ASSERT_TRUE(p.ok()) << p.status();
    g.process = *std::move(p);
    auto line = g.process->WaitForLine("lmgate listening on", Scaled(absl::Seconds(30)));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << g.process->Tail();
    const std::string addr = absl::StrCat("127.0.0.1:", bench::ParseListenPort(*line));
    auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    g.stub = v1::Inference::NewStub(channel);
    g.models = v1::ModelManager::NewStub(channel);
    gateways_.push_back(std::move(g));
  }

  void StartThree(const nlohmann::json& team,
                  const nlohmann::json& cluster = nlohmann::json::object()) {
    for (int i = 0; i < 3; ++i) {
      StartGateway(team, cluster);
      if (HasFatalFailure()) return;
    }
  }

  static v1::ChatRequest Request(int max_tokens) {
    v1::ChatRequest req;
    req.set_model(kModel);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("Tell me about gateways.");
    req.mutable_sampling()->set_max_tokens(max_tokens);
    return req;
  }

  // A whole short chat through gateway `g`.
  grpc::Status Chat(int g, const char* key) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(Scaled(absl::Seconds(30))));
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    auto reader = gateways_[g].stub->Chat(&ctx, Request(4));
    v1::ChatResponse r;
    bool result = false;
    while (reader->Read(&r)) result = result || r.has_result();
    grpc::Status st = reader->Finish();
    if (st.ok() && !result) return grpc::Status(grpc::StatusCode::INTERNAL, "no result message");
    return st;
  }

  // Opens a long chat on `g` and waits for its first message (admitted) or its end (refused).
  std::unique_ptr<HeldStream> Hold(int g, const char* key = kTeamKey) {
    auto s = std::make_unique<HeldStream>();
    s->ctx.set_deadline(In(Scaled(absl::Seconds(60))));
    s->ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    s->reader = gateways_[g].stub->Chat(&s->ctx, Request(4000));
    v1::ChatResponse first;
    s->admitted = s->reader->Read(&first);
    if (!s->admitted) s->status = s->reader->Finish();
    return s;
  }

  static void End(std::unique_ptr<HeldStream>& s) {
    if (s == nullptr) return;
    if (s->admitted) {
      s->ctx.TryCancel();
      v1::ChatResponse r;
      while (s->reader->Read(&r)) {
      }
      s->reader->Finish();
    }
    s.reset();
  }

  std::unique_ptr<testutil::RedisServer> redis_;
  std::unique_ptr<emulator::Emulator> emu_;
  std::vector<Gateway> gateways_;
};

int CountRpmAdmitted(std::vector<std::string>* refusals,
                     const std::function<grpc::Status(int)>& chat) {
  std::atomic<int> ok{0};
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      for (int i = 0; i < 10; ++i) {
        grpc::Status st = chat(g);
        if (st.ok()) {
          ++ok;
        } else {
          absl::MutexLock lock(&mu);
          refusals->push_back(absl::StrCat(st.error_code(), " ", st.error_message()));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return ok.load();
}

TEST_F(ThreeLmgatesTest, RequestsPerMinuteAreExactAcrossThreeGateways) {
  StartThree({{"requests_per_minute", 10}});
  ASSERT_FALSE(HasFatalFailure());
  std::vector<std::string> refusals;
  const int admitted =
      CountRpmAdmitted(&refusals, [this](int g) { return Chat(g, kTeamKey); });
  EXPECT_EQ(admitted, 10);
  ASSERT_EQ(refusals.size(), 20u);
  for (const auto& r : refusals) {
    EXPECT_TRUE(absl::StartsWith(r, "8 ")) << r;  // RESOURCE_EXHAUSTED
    EXPECT_TRUE(absl::StrContains(r, "10 requests/minute reached (across all gateways)")) << r;
  }
}

TEST_F(ThreeLmgatesTest, ConcurrentStreamsAreExactAcrossThreeGateways) {
  StartThree({{"concurrent_streams", 2}});
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(Chat(0, kFreeKey).ok());  // the model is loaded before the race
  std::vector<std::unique_ptr<HeldStream>> streams(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] { streams[i] = Hold(i % 3); });
  }
  for (auto& th : threads) th.join();
  int admitted = 0;
  for (auto& s : streams) {
    if (s->admitted) {
      ++admitted;
    } else {
      EXPECT_EQ(s->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_TRUE(absl::StrContains(s->status.error_message(),
                                    "2 concurrent requests reached (across all gateways)"))
          << s->status.error_message();
    }
  }
  EXPECT_EQ(admitted, 2);
  // One ends: exactly one more fits, through any gateway.
  for (auto& s : streams) {
    if (s->admitted) {
      End(s);
      break;
    }
  }
  std::unique_ptr<HeldStream> next;
  ASSERT_TRUE(Eventually(
      [&] {
        next = Hold(2);
        return next->admitted;
      },
      Scaled(absl::Seconds(5))));
  auto over = Hold(1);
  EXPECT_FALSE(over->admitted);
  End(over);
  End(next);
  for (auto& s : streams) End(s);
}

TEST_F(ThreeLmgatesTest, AKilledGatewaysStreamLapsesWithinThreeHeartbeats) {
  StartThree({{"concurrent_streams", 1}});
  ASSERT_FALSE(HasFatalFailure());
  auto running = Hold(0);
  ASSERT_TRUE(running->admitted) << running->status.error_message();
  auto refused = Hold(2);
  EXPECT_FALSE(refused->admitted);
  End(refused);
  ASSERT_EQ(kill(gateways_[0].process->pid(), SIGKILL), 0);
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(Eventually([&] { return Chat(2, kTeamKey).ok(); }, Scaled(absl::Seconds(10))));
  const absl::Duration lapsed = absl::Now() - killed;
  std::printf("stream permit of the killed gateway lapsed after %s (bound 3 x %.1fs)\n",
              absl::FormatDuration(lapsed).c_str(), kHeartbeatSeconds);
  EXPECT_LE(lapsed, absl::Seconds(3 * kHeartbeatSeconds) + Scaled(absl::Milliseconds(500)));
  EXPECT_TRUE(Chat(1, kTeamKey).ok());  // the others carry on
  End(running);
}

TEST_F(ThreeLmgatesTest, RedisDownFollowsOnRedisErrorAndRecovers) {
  const nlohmann::json team = {{"concurrent_streams", 1}};
  StartGateway(team, {{"on_redis_error", "open"}});
  StartGateway(team, {{"on_redis_error", "closed"}});
  StartGateway(team, {{"on_redis_error", "closed"}});
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(Chat(0, kFreeKey).ok());  // loaded
  redis_->Stop();
  // open: admitted, a full result.
  grpc::Status open = Chat(0, kTeamKey);
  EXPECT_TRUE(open.ok()) << open.error_message();
  // closed: a clear, retryable refusal naming Redis and the setting.
  grpc::Status closed = Chat(1, kTeamKey);
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::UNAVAILABLE) << closed.error_message();
  EXPECT_TRUE(absl::StrContains(closed.error_message(), "shared quota store (Redis at"))
      << closed.error_message();
  EXPECT_TRUE(absl::StrContains(closed.error_message(), "cluster.on_redis_error=closed"))
      << closed.error_message();
  // A tenant without limits needs no Redis: the loaded model keeps serving everywhere.
  for (int g = 0; g < 3; ++g) EXPECT_TRUE(Chat(g, kFreeKey).ok()) << g;
  // Redis comes back empty: the closed gateway admits again, and the limit is exact again.
  ASSERT_TRUE(redis_->Restart().ok());
  std::unique_ptr<HeldStream> held;
  ASSERT_TRUE(Eventually(
      [&] {
        held = Hold(1);
        return held->admitted;
      },
      Scaled(absl::Seconds(10))));
  for (int g : {0, 2}) {
    auto over = Hold(g);
    EXPECT_FALSE(over->admitted) << "gateway " << g << " admitted a second stream";
    EXPECT_EQ(over->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << over->status.error_message();
    End(over);
  }
  End(held);
}

TEST_F(ThreeLmgatesTest, WatchModelsOnASeesBsLoadEventsWithin100ms) {
  StartThree(nlohmann::json::object());
  ASSERT_FALSE(HasFatalFailure());
  // A watches; the snapshot proves the subscription is live.
  grpc::ClientContext watch;
  watch.set_deadline(In(Scaled(absl::Seconds(60))));
  watch.AddMetadata("authorization", absl::StrCat("Bearer ", kFreeKey));
  v1::WatchModelsRequest wreq;
  wreq.set_model(kModel);
  wreq.set_include_snapshot(true);
  auto events = gateways_[0].models->WatchModels(&watch, wreq);
  v1::ModelEvent e;
  ASSERT_TRUE(events->Read(&e));
  ASSERT_EQ(e.kind(), v1::ModelEvent::KIND_SNAPSHOT);
  struct Seen {
    v1::ModelEvent event;
    absl::Time at;
  };
  absl::Mutex mu;
  std::vector<Seen> seen;
  std::thread reader([&] {
    v1::ModelEvent ev;
    while (events->Read(&ev)) {
      absl::MutexLock lock(&mu);
      seen.push_back({ev, absl::Now()});
    }
  });
  auto wait_for = [&](v1::ModelEvent::Kind kind) -> absl::Time {
    absl::MutexLock lock(&mu);
    absl::Time at = absl::InfiniteFuture();
    auto found = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      for (const auto& s : seen) {
        if (s.event.kind() == kind) at = s.at;
      }
      return at != absl::InfiniteFuture();
    };
    mu.AwaitWithTimeout(absl::Condition(&found), Scaled(absl::Seconds(10)));
    return at;
  };

  // B loads the model: its LoadModel stream and A's watch run side by side.
  grpc::ClientContext load;
  load.set_deadline(In(Scaled(absl::Seconds(30))));
  load.AddMetadata("authorization", absl::StrCat("Bearer ", kFreeKey));
  v1::LoadModelRequest lreq;
  lreq.set_model(kModel);
  const absl::Time load_sent = absl::Now();
  auto loading = gateways_[1].models->LoadModel(&load, lreq);
  v1::LoadModelResponse lr;
  absl::Time first_progress = absl::InfiniteFuture(), loaded_at = absl::InfiniteFuture();
  std::string instance;
  while (loading->Read(&lr)) {
    if (lr.has_progress() && first_progress == absl::InfiniteFuture()) first_progress = absl::Now();
    if (lr.has_instance()) {
      loaded_at = absl::Now();
      instance = lr.instance().identifier();
    }
  }
  ASSERT_TRUE(loading->Finish().ok());
  ASSERT_FALSE(instance.empty());
  const absl::Time started_at_a = wait_for(v1::ModelEvent::KIND_LOAD_STARTED);
  const absl::Time progress_at_a = wait_for(v1::ModelEvent::KIND_LOAD_PROGRESS);
  const absl::Time loaded_at_a = wait_for(v1::ModelEvent::KIND_LOADED);
  ASSERT_NE(loaded_at_a, absl::InfiniteFuture()) << "A never saw B's LOADED";
  std::printf("A saw B's LOAD_STARTED %s after B's LoadModel call; LOADED %s after B answered\n",
              absl::FormatDuration(started_at_a - load_sent).c_str(),
              absl::FormatDuration(loaded_at_a - loaded_at).c_str());
  EXPECT_LE(started_at_a - load_sent, Scaled(absl::Milliseconds(100)));
  if (first_progress != absl::InfiniteFuture()) {
    EXPECT_LE(progress_at_a - first_progress, Scaled(absl::Milliseconds(100)));
  }
  EXPECT_LE(loaded_at_a - loaded_at, Scaled(absl::Milliseconds(100)));

  // A's own sync (1 s) finds B's instance: A's registry now has it READY (it took nothing from
  // the remote event), and no EXTERNAL_CHANGE of it reaches the watch.
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(In(absl::Seconds(5)));
        ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kFreeKey));
        v1::GetModelRequest req;
        req.set_model(kModel);
        v1::Model m;
        return gateways_[0].models->GetModel(&ctx, req, &m).ok() &&
               m.state() == v1::MODEL_STATE_READY;
      },
      Scaled(absl::Seconds(10))));
  grpc::ClientContext unload;
  unload.set_deadline(In(Scaled(absl::Seconds(30))));
  unload.AddMetadata("authorization", absl::StrCat("Bearer ", kFreeKey));
  v1::UnloadModelRequest ureq;
  ureq.set_model(instance);
  v1::UnloadModelResponse ures;
  ASSERT_TRUE(gateways_[1].models->UnloadModel(&unload, ureq, &ures).ok());
  const absl::Time unloaded_at = absl::Now();
  const absl::Time unloaded_at_a = wait_for(v1::ModelEvent::KIND_UNLOADED);
  ASSERT_NE(unloaded_at_a, absl::InfiniteFuture()) << "A never saw B's UNLOADED";
  EXPECT_LE(unloaded_at_a - unloaded_at, Scaled(absl::Milliseconds(100)));
  watch.TryCancel();
  reader.join();
  events->Finish();
  absl::MutexLock lock(&mu);
  for (const auto& s : seen) {
    EXPECT_NE(s.event.kind(), v1::ModelEvent::KIND_EXTERNAL_CHANGE) << s.event.DebugString();
  }
}

}  // namespace
}  // namespace lmgate
