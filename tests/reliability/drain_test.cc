// Drain on shutdown (issue 16): readiness turns NOT_SERVING first while lmgate keeps serving for
// drain_delay, then it stops accepting; a WatchModels stream ends OK at once and does not hold
// the grace open.
#include <chrono>
#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testutil::Scaled;

class DrainTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&,
                 services::ServerOptions& server) override {
    server.drain_delay = drain_delay_;
  }

  HealthCheckResponse::ServingStatus Readiness() {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckRequest req;
    req.set_service("lmgate.v1.Inference");
    HealthCheckResponse resp;
    grpc::Status st = health->Check(&ctx, req, &resp);
    return st.ok() ? resp.status() : HealthCheckResponse::UNKNOWN;
  }

  grpc::Status ListModels() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListModelsResponse resp;
    return models_->ListModels(&ctx, v1::ListModelsRequest(), &resp);
  }

  const absl::Duration drain_delay_ = Scaled(absl::Milliseconds(600));
  const absl::Duration grace_ = Scaled(absl::Seconds(8));
};

// A watch is not work to drain: it ends OK when shutdown begins, and Shutdown takes about
// drain_delay, not the grace (before: the watch was cancelled at the end of the grace).
TEST_F(DrainTest, WatchEndsOkAtOnceAndDoesNotHoldTheGrace) {
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchModelsRequest wreq;
  wreq.set_include_snapshot(true);
  auto watch = models_->WatchModels(&watch_ctx, wreq);
  v1::ModelEvent e;
  ASSERT_TRUE(watch->Read(&e));  // the stream is open (snapshot)

  const absl::Time start = absl::Now();
  absl::Duration shutdown_took;
  std::thread stopper([&] {
    server_->Shutdown(grace_);
    shutdown_took = absl::Now() - start;
  });
  while (watch->Read(&e)) {
  }
  grpc::Status st = watch->Finish();
  const absl::Duration watch_took = absl::Now() - start;
  stopper.join();
  EXPECT_TRUE(st.ok()) << st.error_code() << ": " << st.error_message();
  EXPECT_LT(watch_took, drain_delay_) << "the watch ended only after the drain delay";
  EXPECT_GE(shutdown_took, drain_delay_);
  EXPECT_LT(shutdown_took, grace_ / 2) << "the watch held the grace open";
}

// During drain_delay readiness is NOT_SERVING and new calls are still answered; after it lmgate
// no longer accepts them.
TEST_F(DrainTest, ReadinessFirstThenStopAccepting) {
  ASSERT_EQ(Readiness(), HealthCheckResponse::SERVING);
  absl::Notification stopped;
  std::thread stopper([&] {
    server_->Shutdown(grace_);
    stopped.Notify();
  });
  // Health answers until the listener stops; each Check is a round trip, not a sleep.
  HealthCheckResponse::ServingStatus ready = HealthCheckResponse::SERVING;
  while (ready == HealthCheckResponse::SERVING && !stopped.HasBeenNotified()) ready = Readiness();
  EXPECT_EQ(ready, HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(stopped.HasBeenNotified()) << "shutdown finished before readiness was seen";
  grpc::Status during = ListModels();
  const bool still_draining = !stopped.HasBeenNotified();
  EXPECT_TRUE(during.ok()) << during.error_message();
  EXPECT_TRUE(still_draining);
  stopper.join();
  grpc::Status after = ListModels();
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAVAILABLE) << after.error_message();
}

}  // namespace
}  // namespace lmgate
