// Health follows the host (issue 18 bug 4): service and per-model readiness go NOT_SERVING within
// one health interval of the host going away and come back when it answers again; what failed
// only because the host was unreachable is not left FAILED once it answers.
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using grpc::health::v1::HealthCheckResponse;
using testutil::kModel;

constexpr char kOther[] = "google/gemma-3-1b";
constexpr absl::Duration kInterval = absl::Milliseconds(300);

// One health Watch, read on the test thread.
class HealthWatch {
 public:
  HealthWatch(grpc::health::v1::Health::Stub* stub, const std::string& service) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(30))));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    reader_ = stub->Watch(&ctx_, req);
  }
  ~HealthWatch() {
    ctx_.TryCancel();
    HealthCheckResponse r;
    while (reader_->Read(&r)) {
    }
    (void)reader_->Finish();
  }
  // Reads until the status is `want` (true) or the stream ends (false).
  bool WaitFor(HealthCheckResponse::ServingStatus want) {
    if (last_ == want) return true;
    HealthCheckResponse r;
    while (reader_->Read(&r)) {
      last_ = r.status();
      if (last_ == want) return true;
    }
    return false;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader_;
  HealthCheckResponse::ServingStatus last_ = HealthCheckResponse::UNKNOWN;
};

class HostHealthTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&,
                 services::ServerOptions& server) override {
    server.health_interval = kInterval;
  }
  void SetUp() override {
    testutil::GatewayFixture::SetUp();
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  HealthCheckResponse::ServingStatus Check(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(10))));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status st = health_->Check(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << service << ": " << st.error_code() << " " << st.error_message();
    return st.ok() ? resp.status() : HealthCheckResponse::SERVICE_UNKNOWN;
  }

  v1::ModelState StateOf(const std::string& key) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(10))));
    v1::ListModelsRequest req;
    req.set_refresh(true);
    v1::ListModelsResponse resp;
    grpc::Status st = models_->ListModels(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    for (const v1::Model& m : resp.models()) {
      if (m.key() == key) return m.state();
    }
    return v1::MODEL_STATE_UNSPECIFIED;
  }

  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// Every model the host has answers per-model health the same way before and after a load.
TEST_F(HostHealthTest, PerModelHealthAnswersAlikeForEveryKnownModel) {
  const std::string service = std::string("lmgate.model/") + kModel;
  EXPECT_EQ(Check(service), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(std::string("lmgate.model/") + kOther), HealthCheckResponse::NOT_SERVING);
  HealthWatch watch(health_.get(), service);
  EXPECT_TRUE(watch.WaitFor(HealthCheckResponse::NOT_SERVING));
  ASSERT_TRUE(Chat(ChatRequest(v1::DRIVER_AUTO), testutil::Scaled(absl::Seconds(20))).status.ok());
  EXPECT_TRUE(watch.WaitFor(HealthCheckResponse::SERVING));
  EXPECT_EQ(Check(service), HealthCheckResponse::SERVING);
  ASSERT_TRUE(emu_->Unload(kModel).ok());
  EXPECT_EQ(StateOf(kModel), v1::MODEL_STATE_NOT_LOADED);
  EXPECT_TRUE(watch.WaitFor(HealthCheckResponse::NOT_SERVING));
  EXPECT_EQ(Check(service), HealthCheckResponse::NOT_SERVING);
}

// Bug 4: the host goes away → service and per-model readiness NOT_SERVING within one interval;
// a model requested meanwhile is not left FAILED once the host answers again.
TEST_F(HostHealthTest, ReadinessFollowsTheHostWithinOneInterval) {
  ASSERT_TRUE(Chat(ChatRequest(v1::DRIVER_AUTO), testutil::Scaled(absl::Seconds(20))).status.ok());
  const std::string model_service = std::string("lmgate.model/") + kModel;
  HealthWatch service(health_.get(), "lmgate.v1.Inference");
  HealthWatch model(health_.get(), model_service);
  ASSERT_TRUE(service.WaitFor(HealthCheckResponse::SERVING));
  ASSERT_TRUE(model.WaitFor(HealthCheckResponse::SERVING));

  const absl::Duration outage = testutil::Scaled(absl::Seconds(4));
  const absl::Time down = absl::Now();
  emu_->RefuseConnections(absl::ToInt64Milliseconds(outage), /*drop_existing_connections=*/true);
  ASSERT_TRUE(service.WaitFor(HealthCheckResponse::NOT_SERVING));
  const absl::Duration service_took = absl::Now() - down;
  ASSERT_TRUE(model.WaitFor(HealthCheckResponse::NOT_SERVING));
  const absl::Duration model_took = absl::Now() - down;
  // One interval, plus what a loaded 2-core machine adds to a refused connection.
  const absl::Duration bound = kInterval + testutil::Scaled(absl::Milliseconds(400));
  EXPECT_LE(service_took, bound) << "service readiness took " << service_took;
  EXPECT_LE(model_took, bound) << "per-model readiness took " << model_took;
  std::cerr << "NOT_SERVING after the host went away: service " << service_took << ", model "
            << model_took << " (interval " << kInterval << ")\n";
  EXPECT_EQ(Check(model_service), HealthCheckResponse::NOT_SERVING);

  // A model requested during the outage fails (the host is unreachable) ...
  v1::ChatRequest other = ChatRequest(v1::DRIVER_AUTO);
  other.set_model(kOther);
  testutil::ChatOutcome o = Chat(other, testutil::Scaled(absl::Seconds(2)));
  EXPECT_FALSE(o.status.ok());
  const bool outage_left = absl::Now() - down < outage;

  // ... and the host answering again clears it: readiness back, nothing FAILED.
  ASSERT_TRUE(service.WaitFor(HealthCheckResponse::SERVING));
  ASSERT_TRUE(model.WaitFor(HealthCheckResponse::SERVING));
  if (outage_left) {
    EXPECT_NE(StateOf(kOther), v1::MODEL_STATE_FAILED) << "still FAILED after the host came back";
  }
  EXPECT_TRUE(Chat(other, testutil::Scaled(absl::Seconds(20))).status.ok());
}

}  // namespace
}  // namespace lmgate
