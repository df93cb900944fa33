// Issue 14, leases: real lmgate processes (A, B) in front of one LM Studio emulator, sharing one
// redis-server (cluster.redis_url), never unload an instance another gateway is streaming from:
// - B's UnloadModel without force answers FAILED_PRECONDITION naming A's holder;
// - B's idle TTL does not unload it while A streams (A's stream is never truncated), and does once
//   A's stream ended and the TTL passed (the last use is shared);
// - Redis stopped: B's UnloadModel answers UNAVAILABLE naming Redis, B's TTL never unloads (the
//   reservation is refused), A's stream completes; Redis back (empty): B's TTL unloads again.
// - kill -9 of A mid-stream: its lease lapses within 3 heartbeats and B's UnloadModel succeeds;
// - a forced UnloadModel on B ends A's stream UNAVAILABLE "force-unloaded";
// - B's capacity eviction (max_loaded_models) never picks the instance A streams from: it evicts
//   an idle one instead, or waits until A's stream ended.
// In embedded mode (no cluster section) B unloads under A and A's stream ends early: these tests
// fail (seen with the previous lmgate, whose cluster mode kept leases in-process).
// Waits are on stream messages and process output, or poll a condition with a deadline.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
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
constexpr char kKey[] = "cluster-lease-key-3b9d1f7a2e";
constexpr int kTokensPerSecond = 25;
constexpr double kTtlSeconds = 0.5;

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

// A Chat stream: open once its first message arrived; Finish() reads it to the end.
struct Stream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> reader;
  bool open = false;
  int deltas = 0;
  bool has_result = false;
  v1::InferenceResult result;
  grpc::Status Finish() {
    v1::ChatResponse r;
    while (reader->Read(&r)) {
      if (r.has_content_delta()) ++deltas;
      if (r.has_result()) {
        has_result = true;
        result = r.result();
      }
    }
    return reader->Finish();
  }
};

class ClusterLeasesTest : public testing::Test {
 protected:
  void SetUp() override {
    setenv("CLUSTER_LEASE_TEST_KEY", kKey, 1);
    auto redis = testutil::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    emulator::Options eo;
    eo.settings.ttft_ms = 5;
    eo.settings.tokens_per_second = kTokensPerSecond;  // a slow stream: seconds long
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

  // Starts one lmgate sharing redis_ (heartbeat 0.2 s); `extra` overlays the top-level config.
  void StartGateway(const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json c = {
        {"listen", "127.0.0.1:0"},
        {"lmstudio", {{"url", emu_->http_url()}, {"connect_timeout_seconds", 1}}},
        {"drivers", {"sdk_ws", "rest", "openai"}},
        {"default_model", kModel},
        {"metrics_listen", ""},
        {"log_level", "warn"},
        {"shutdown_grace_seconds", 1},
        {"refresh_interval_seconds", 0.5},
        {"keys",
         {{{"tenant", "team"},
           {"key_env", "CLUSTER_LEASE_TEST_KEY"},
           {"roles", {"inference", "admin"}}}}},
        {"cluster",
         {{"redis_url", redis_->url()},
          {"heartbeat_seconds", 0.2},
          {"command_timeout_seconds", 0.2 * testutil::TimeScale()}}}};
    c.update(extra);
    char path[] = "/tmp/lmgate-leases.XXXXXX";
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

  // A (gateway 0, no TTL) and B (gateway 1, idle TTL kTtlSeconds).
  void StartAAndB() {
    StartGateway();
    if (HasFatalFailure()) return;
    // A model policy's TTL applies to instances found loaded (A's).
    StartGateway({{"models", {{kModel, {{"ttl_seconds", kTtlSeconds}}}}}});
  }

  // Opens a chat of `tokens` tokens on `g` and waits for its first message.
  std::unique_ptr<Stream> Open(int g, int tokens) {
    auto s = std::make_unique<Stream>();
    s->ctx.set_deadline(In(Scaled(absl::Seconds(60))));
    s->ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    v1::ChatRequest req;
    req.set_model(kModel);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("Tell me about gateways.");
    req.mutable_sampling()->set_max_tokens(tokens);
    s->reader = gateways_[g].stub->Chat(&s->ctx, req);
    v1::ChatResponse first;
    s->open = s->reader->Read(&first);
    if (first.has_content_delta()) ++s->deltas;
    return s;
  }

  grpc::Status Unload(int g, bool force = false) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(Scaled(absl::Seconds(30))));
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    v1::UnloadModelRequest req;
    req.set_model(kModel);
    req.set_force(force);
    v1::UnloadModelResponse resp;
    return gateways_[g].models->UnloadModel(&ctx, req, &resp);
  }

  // B's UnloadModel until B's sync found the instance A loaded (NOT_FOUND before).
  grpc::Status UnloadOnceBSeesIt() {
    grpc::Status st;
    Eventually(
        [&] {
          st = Unload(1);
          return st.error_code() != grpc::StatusCode::NOT_FOUND;
        },
        Scaled(absl::Seconds(10)));
    return st;
  }

  int LoadedOnHost() const { return static_cast<int>(emu_->Stats()["loaded_instances"].size()); }

  // The model keys of the host's instances, sorted.
  std::vector<std::string> ModelsOnHost() const {
    std::vector<std::string> keys;
    const nlohmann::json stats = emu_->Stats();
    for (const auto& i : stats["loaded_instances"]) keys.push_back(i["modelKey"]);
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  // A short non-streamed chat of `model` on gateway `g`.
  grpc::Status ChatOnce(int g, const std::string& model) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(Scaled(absl::Seconds(30))));
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    v1::ChatRequest req;
    req.set_model(model);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("hi");
    req.mutable_sampling()->set_max_tokens(1);
    auto reader = gateways_[g].stub->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  // A's gateway id names its leases: "<host>:<pid>:<start ms>/<request id>#<lease>".
  std::string PidOf(int g) const { return absl::StrCat(":", gateways_[g].process->pid(), ":"); }

  static void ExpectComplete(Stream& s, const grpc::Status& st, int tokens) {
    EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    ASSERT_TRUE(s.has_result) << "the stream ended without its result after " << s.deltas
                              << " deltas";
    EXPECT_NE(s.result.stats().stop_reason(), v1::STOP_REASON_MODEL_UNLOADED);
    EXPECT_EQ(s.result.stats().completion_tokens(), tokens);
  }

  std::unique_ptr<testutil::RedisServer> redis_;
  std::unique_ptr<emulator::Emulator> emu_;
  std::vector<Gateway> gateways_;
};

TEST_F(ClusterLeasesTest, NoForceUnloadOnBIsRefusedNamingAsHolder) {
  StartAAndB();
  ASSERT_FALSE(HasFatalFailure());
  const int tokens = 4 * kTokensPerSecond;  // ~4 s
  auto a = Open(0, tokens);
  ASSERT_TRUE(a->open);
  const grpc::Status st = UnloadOnceBSeesIt();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "serving 1 request(s)")) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), PidOf(0))) << st.error_message();
  EXPECT_EQ(LoadedOnHost(), 1);
  ExpectComplete(*a, a->Finish(), tokens);
}

TEST_F(ClusterLeasesTest, AKilledGatewaysLeaseLapsesWithinThreeHeartbeats) {
  StartAAndB();
  ASSERT_FALSE(HasFatalFailure());
  auto a = Open(0, 40 * kTokensPerSecond);
  ASSERT_TRUE(a->open);
  ASSERT_EQ(UnloadOnceBSeesIt().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_EQ(kill(gateways_[0].process->pid(), SIGKILL), 0);
  const absl::Time killed = absl::Now();
  a->ctx.TryCancel();
  (void)a->Finish();  // A is gone: the stream ends UNAVAILABLE or CANCELLED
  ASSERT_TRUE(Eventually([&] { return Unload(1).ok(); }, Scaled(absl::Seconds(10))))
      << "A's lease never lapsed";
  // Lease TTL = 3 heartbeats (0.6 s) after A's last renewal, plus B's polling.
  EXPECT_LE(absl::Now() - killed, Scaled(absl::Seconds(1.5)));
  EXPECT_EQ(LoadedOnHost(), 0);
}

TEST_F(ClusterLeasesTest, ForcedUnloadOnBEndsAsStreamUnavailable) {
  StartAAndB();
  ASSERT_FALSE(HasFatalFailure());
  auto a = Open(0, 4 * kTokensPerSecond);
  ASSERT_TRUE(a->open);
  ASSERT_EQ(UnloadOnceBSeesIt().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const grpc::Status forced = Unload(1, /*force=*/true);
  EXPECT_TRUE(forced.ok()) << forced.error_code() << " " << forced.error_message();
  const grpc::Status st = a->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "force-unloaded")) << st.error_message();
  EXPECT_FALSE(a->has_result);
  EXPECT_EQ(LoadedOnHost(), 0);
}

TEST_F(ClusterLeasesTest, TtlOnBWaitsForAsStreamThenUnloads) {
  StartAAndB();
  ASSERT_FALSE(HasFatalFailure());
  const int tokens = 3 * kTokensPerSecond;  // ~3 s: B syncs and its 0.5 s TTL passes meanwhile
  auto a = Open(0, tokens);
  ASSERT_TRUE(a->open);
  ExpectComplete(*a, a->Finish(), tokens);
  const absl::Time ended = absl::Now();
  EXPECT_EQ(LoadedOnHost(), 1) << "unloaded under A's stream";
  ASSERT_TRUE(Eventually([&] { return LoadedOnHost() == 0; }, Scaled(absl::Seconds(10))))
      << "B's TTL never unloaded the idle instance";
  // The TTL counted from A's release (the shared last use), not from B's own (none).
  EXPECT_GE(absl::Now() - ended, absl::Seconds(kTtlSeconds) - absl::Milliseconds(100));
}

TEST_F(ClusterLeasesTest, WithRedisStoppedBNeverUnloadsAndAsStreamCompletes) {
  StartAAndB();
  ASSERT_FALSE(HasFatalFailure());
  const int tokens = 3 * kTokensPerSecond;
  auto a = Open(0, tokens);
  ASSERT_TRUE(a->open);
  const grpc::Status leased = UnloadOnceBSeesIt();
  ASSERT_EQ(leased.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << leased.error_message();
  redis_->Stop();
  const grpc::Status st = Unload(1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "Redis")) << st.error_message();
  ExpectComplete(*a, a->Finish(), tokens);
  // Idle for 4x B's TTL (8 of B's refresh/TTL ticks): B's expiry is refused each time.
  const absl::Time until = absl::Now() + Scaled(absl::Seconds(4 * kTtlSeconds));
  while (absl::Now() < until) {
    ASSERT_EQ(LoadedOnHost(), 1) << "B unloaded without being able to confirm A's leases";
    absl::SleepFor(absl::Milliseconds(20));  // sampling a condition that must stay true
  }
  // Redis back, empty: B can confirm nobody holds a lease, and its TTL unloads the instance.
  ASSERT_TRUE(redis_->Restart().ok());
  EXPECT_TRUE(Eventually([&] { return LoadedOnHost() == 0; }, Scaled(absl::Seconds(10))))
      << "B's TTL did not resume after Redis came back";
}

// B (max_loaded_models 2) needs room for a third model while A streams from the instance B found
// first (the least recently used in B's view, so its first eviction candidate): B evicts its own
// idle instance instead, at once, and A's stream completes. Before, B's eviction stopped at the
// refused candidate and B's call waited until A's stream ended, then evicted A's model.
TEST_F(ClusterLeasesTest, EvictionOnBSkipsTheInstanceAStreamsFrom) {
  StartGateway();
  if (HasFatalFailure()) return;
  StartGateway({{"max_loaded_models", 2}});
  ASSERT_FALSE(HasFatalFailure());
  const int tokens = 6 * kTokensPerSecond;  // ~6 s
  auto a = Open(0, tokens);
  ASSERT_TRUE(a->open);
  ASSERT_EQ(UnloadOnceBSeesIt().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const grpc::Status idle = ChatOnce(1, "google/gemma-3-1b");
  ASSERT_TRUE(idle.ok()) << idle.error_message();
  ASSERT_EQ(ModelsOnHost(), std::vector<std::string>({"google/gemma-3-1b", kModel}));
  const absl::Time asked = absl::Now();
  const grpc::Status third = ChatOnce(1, "qwen/qwen3-4b-thinking-2507");
  ASSERT_TRUE(third.ok()) << third.error_message();
  // Well before A's ~6 s stream could have ended: nothing waited for it.
  EXPECT_LT(absl::Now() - asked, Scaled(absl::Seconds(3)));
  EXPECT_EQ(ModelsOnHost(), std::vector<std::string>({kModel, "qwen/qwen3-4b-thinking-2507"}));
  ExpectComplete(*a, a->Finish(), tokens);
}

// B (max_loaded_models 1) needs room while A streams from the only instance: B's call waits for
// A's stream to end (A's stream is never cut), then evicts it and loads its own.
TEST_F(ClusterLeasesTest, EvictionOnBWaitsForAsStream) {
  StartGateway();
  if (HasFatalFailure()) return;
  StartGateway({{"max_loaded_models", 1}});
  ASSERT_FALSE(HasFatalFailure());
  const int tokens = 2 * kTokensPerSecond;  // ~2 s
  auto a = Open(0, tokens);
  ASSERT_TRUE(a->open);
  ASSERT_EQ(UnloadOnceBSeesIt().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const grpc::Status other = ChatOnce(1, "google/gemma-3-1b");
  EXPECT_TRUE(other.ok()) << other.error_code() << " " << other.error_message();
  ExpectComplete(*a, a->Finish(), tokens);
  EXPECT_EQ(ModelsOnHost(), std::vector<std::string>({"google/gemma-3-1b"}));
}

}  // namespace
}  // namespace lmgate
