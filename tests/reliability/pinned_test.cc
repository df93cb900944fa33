// keep_loaded at start (issue 16): a pinned model is loaded without any request, and with
// ready_requires_pinned readiness is NOT_SERVING until it is READY.
#include <chrono>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testutil::kModel;

class PinnedTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig&,
                 services::ServerOptions& server) override {
    emulator.settings.load_ms_per_gb = 800;  // the 2.5 GB model takes ~2 s to load
    server.gateway.lifecycle.models[kModel].keep_loaded = true;
    server.ready_requires_pinned = true;
    server.health_interval = absl::Milliseconds(100);
  }
};

TEST_F(PinnedTest, PinnedModelLoadsAtStartAndReadinessWaitsForIt) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  HealthCheckRequest req;
  req.set_service("lmgate.v1.Inference");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoSeconds(testutil::Scaled(absl::Seconds(30))));
  auto watch = health->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(watch->Read(&resp));
  // The host answers, but the pinned model is still loading.
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  while (resp.status() != HealthCheckResponse::SERVING && watch->Read(&resp)) {
  }
  ASSERT_EQ(resp.status(), HealthCheckResponse::SERVING);
  ctx.TryCancel();
  (void)watch->Finish();
  // Nobody asked for the model: lmgate loaded it once, on its own.
  EXPECT_EQ(Stat("loads_started"), 1);
  EXPECT_EQ(Stat("predictions_started"), 0);
}

}  // namespace
}  // namespace lmgate
