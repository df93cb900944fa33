// Issue 16's lifecycle operations through the real lmgate binary, as an operator runs it (the
// in-process versions are drain_test and pinned_test):
// - a keep_loaded model is loaded at start with no request (readiness waits for it with
//   ready_requires_pinned), and loaded again after the host forgot it;
// - SIGTERM with drain_delay_seconds: readiness turns NOT_SERVING first, new calls are still
//   served during the delay, a stream running across the drain completes OK, the exit code is 0.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/bench/chat_target.h"
#include "tests/bench/scenarios.h"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testutil::Scaled;

constexpr char kModel[] = "qwen/qwen3-4b";

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoSeconds(d);
}

class BinaryOpsTest : public testing::Test {
 protected:
  void StartBoth(const nlohmann::json& extra) {
    emulator::Options eo;
    eo.settings.ttft_ms = 5;
    eo.settings.tokens_per_second = 200;
    auto emu = emulator::Emulator::Create(eo);
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = *std::move(emu);
    nlohmann::json c = {{"listen", "127.0.0.1:0"},
                        {"lmstudio", {{"url", emu_->http_url()}, {"connect_timeout_seconds", 1}}},
                        {"default_model", kModel},
                        {"metrics_listen", ""},
                        {"log_level", "warn"}};
    c.update(extra);
    char path[] = "/tmp/lmgate-binary-ops.XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = c.dump();
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    config_ = path;
    auto p = bench::Subprocess::Start({"services/lmgate", "--config=" + config_});
    ASSERT_TRUE(p.ok()) << p.status();
    lmgate_ = *std::move(p);
    auto line = lmgate_->WaitForLine("lmgate listening on", Scaled(absl::Seconds(30)));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << lmgate_->Tail();
    addr_ = absl::StrCat("127.0.0.1:", bench::ParseListenPort(*line));
    channel_ = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (lmgate_) lmgate_->Stop(Scaled(absl::Seconds(30)));
    if (!config_.empty()) unlink(config_.c_str());
  }

  // Waits (Health.Watch, no polling) until `service` reports `want`.
  bool WaitHealth(const std::string& service, HealthCheckResponse::ServingStatus want,
                  absl::Duration timeout) {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(In(timeout));
    HealthCheckRequest req;
    req.set_service(service);
    auto reader = stub->Watch(&ctx, req);
    HealthCheckResponse resp;
    while (reader->Read(&resp)) {
      if (resp.status() == want) {
        ctx.TryCancel();
        reader->Finish();
        return true;
      }
    }
    reader->Finish();
    return false;
  }

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<bench::Subprocess> lmgate_;
  std::string config_;
  std::string addr_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(BinaryOpsTest, PinnedModelLoadsAtStartAndAfterTheHostForgetsIt) {
  StartBoth({{"models", {{kModel, {{"keep_loaded", true}}}}},
             {"ready_requires_pinned", true},
             {"refresh_interval_seconds", 1}});
  // No request has been made: readiness turns SERVING only once the pinned model is READY.
  ASSERT_TRUE(WaitHealth("lmgate.v1.Inference", HealthCheckResponse::SERVING,
                         Scaled(absl::Seconds(30))))
      << lmgate_->Tail();
  auto mm = v1::ModelManager::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    v1::GetModelRequest req;
    req.set_model(kModel);
    v1::Model m;
    ASSERT_TRUE(mm->GetModel(&ctx, req, &m).ok());
    EXPECT_EQ(m.state(), v1::MODEL_STATE_READY) << m.DebugString();
  }
  // The host forgets it (unloaded in the LM Studio app): lmgate loads it again by itself.
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(In(Scaled(absl::Seconds(60))));
  v1::WatchModelsRequest wreq;
  wreq.set_model(kModel);
  wreq.set_include_snapshot(true);  // the snapshot proves the subscription is live
  auto events = mm->WatchModels(&watch_ctx, wreq);
  v1::ModelEvent e;
  ASSERT_TRUE(events->Read(&e));
  ASSERT_EQ(e.kind(), v1::ModelEvent::KIND_SNAPSHOT) << e.DebugString();
  ASSERT_TRUE(emu_->Unload(kModel).ok());
  bool gone = false, loaded_again = false;
  while (!loaded_again && events->Read(&e)) {
    if (e.state() != v1::MODEL_STATE_READY) gone = true;
    if (gone && e.kind() == v1::ModelEvent::KIND_LOADED) loaded_again = true;
  }
  watch_ctx.TryCancel();
  events->Finish();
  EXPECT_TRUE(loaded_again) << "the pinned model was not loaded again\n" << lmgate_->Tail();
}

TEST_F(BinaryOpsTest, SigtermDrainsThenExitsZero) {
  const absl::Duration delay = Scaled(absl::Seconds(2));
  StartBoth({{"drain_delay_seconds", absl::ToDoubleSeconds(delay)},
             {"shutdown_grace_seconds", absl::ToDoubleSeconds(Scaled(absl::Seconds(10)))}});
  auto channels = bench::MakeChannels(addr_, 1);
  auto target = bench::MakeGrpcTarget(channels, v1::DRIVER_AUTO, kModel);
  // A short stream first: the model is loaded and the path is warm.
  bench::ChatSpec spec;
  spec.max_tokens = 8;
  spec.timeout = Scaled(absl::Seconds(60));
  auto run = [&](bench::ChatSpec s) {
    absl::Notification done;
    absl::Status result;
    bench::ChatCallbacks cb;
    cb.on_done = [&](const absl::Status& st, int, absl::Time) {
      result = st;
      done.Notify();
    };
    auto call = target->Start(s, std::move(cb));
    done.WaitForNotificationWithTimeout(Scaled(absl::Seconds(60)));
    return result;
  };
  ASSERT_TRUE(run(spec).ok()) << lmgate_->Tail();

  // A stream that runs across the drain: 600 tokens at 200 tok/s ≈ 3 s (more under sanitizers),
  // longer than the delay, shorter than delay + grace.
  absl::Notification long_done, long_started;
  absl::Status long_status;
  bench::ChatSpec long_spec = spec;
  long_spec.max_tokens = 600;
  bench::ChatCallbacks cb;
  cb.on_first_token = [&](absl::Time) { long_started.Notify(); };
  cb.on_done = [&](const absl::Status& st, int, absl::Time) {
    long_status = st;
    long_done.Notify();
  };
  auto long_call = target->Start(long_spec, std::move(cb));
  ASSERT_TRUE(long_started.WaitForNotificationWithTimeout(Scaled(absl::Seconds(30))));

  const absl::Time sigterm = absl::Now();
  ASSERT_EQ(kill(lmgate_->pid(), SIGTERM), 0);
  // Readiness goes first, well before the delay ends...
  EXPECT_TRUE(WaitHealth("lmgate.v1.Inference", HealthCheckResponse::NOT_SERVING,
                         Scaled(absl::Seconds(5))));
  // ...while new calls are still served.
  EXPECT_TRUE(run(spec).ok()) << "a call during the drain delay was refused";
  EXPECT_LT(absl::Now() - sigterm, delay)
      << "the checks above took longer than the drain delay; the test proves nothing";

  const int exit_code = lmgate_->Stop(Scaled(absl::Seconds(30)));
  EXPECT_EQ(exit_code, 0) << lmgate_->Tail();
  ASSERT_TRUE(long_done.WaitForNotificationWithTimeout(Scaled(absl::Seconds(30))));
  EXPECT_TRUE(long_status.ok()) << "the stream running across the drain: " << long_status;
  lmgate_.reset();
}

}  // namespace
}  // namespace lmgate
