// SDK defaults (issue 18 item 7): a host that leaves an instance's default slot count out of its
// load config (some host versions do; the emulator's omit_default_parallel) has 4 slots, the SDK's
// default for llm.load.numParallelSessions. lmgate must report 4 and run 4 predictions at once on
// it, not fall back to its own admission.concurrency_per_model (set to 1 here so the two differ).
#include <algorithm>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

class DefaultParallelTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig&,
                 services::ServerOptions& server) override {
    emulator.settings.omit_default_parallel = true;  // the instance still has 4 slots
    server.gateway.admission.default_concurrency = 1;
  }

  grpc::Status Load(v1::Driver driver) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::LoadModelRequest req;
    req.set_model(kModel);
    req.set_driver(driver);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  int ReportedSlots() {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::ListModelsRequest req;
    v1::ListModelsResponse resp;
    EXPECT_TRUE(models_->ListModels(&ctx, req, &resp).ok());
    for (const v1::Model& m : resp.models()) {
      for (const v1::ModelInstance& i : m.instances()) {
        if (i.model_key() == kModel) return i.parallel_slots();
      }
    }
    return -1;
  }

  // Starts `n` slow chats and reports the most predictions the host ran at once.
  int PeakConcurrency(int n) {
    SetTokens(/*tokens_per_second=*/40, /*response_tokens=*/40);  // ~1 s per chat
    std::vector<std::thread> chats;
    for (int i = 0; i < n; ++i) {
      chats.emplace_back([this] {
        v1::ChatRequest req = ChatRequest(v1::DRIVER_AUTO, /*max_tokens=*/40);
        EXPECT_TRUE(Chat(req, testutil::Scaled(absl::Seconds(30))).status.ok());
      });
    }
    // Waits (bounded) for all n to run together; fewer means lmgate queued them.
    int peak = 0;
    const absl::Time until = absl::Now() + testutil::Scaled(absl::Seconds(5));
    while (peak < n && absl::Now() < until) {
      peak = std::max(peak, Stat("predictions_active"));
      std::this_thread::yield();
    }
    for (std::thread& t : chats) t.join();
    return peak;
  }
};

TEST_F(DefaultParallelTest, SdkWsLoadHasTheSdkDefaultOfFourSlots) {
  ASSERT_TRUE(Load(v1::DRIVER_SDK).ok());
  EXPECT_EQ(ReportedSlots(), 4);
  EXPECT_EQ(PeakConcurrency(4), 4);
}

// An instance lmgate did not load, found by the host sync: its slot count comes from the host.
TEST_F(DefaultParallelTest, AnInstanceLoadedOutsideLmgateHasFourSlots) {
  ASSERT_TRUE(emu_->Load(kModel).ok());
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::ListModelsRequest req;
    req.set_refresh(true);
    v1::ListModelsResponse resp;
    ASSERT_TRUE(models_->ListModels(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(ReportedSlots(), 4);
  EXPECT_EQ(PeakConcurrency(4), 4);
}

// The rest driver reads the same default from an /api/v1/models row without `parallel`.
TEST_F(DefaultParallelTest, RestListingWithoutParallelHasFourSlots) {
  ASSERT_TRUE(emu_->Load(kModel).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
  v1::ListModelsRequest req;
  req.set_driver(v1::DRIVER_REST);
  v1::ListModelsResponse resp;
  ASSERT_TRUE(models_->ListModels(&ctx, req, &resp).ok());
  int slots = -1;
  for (const v1::Model& m : resp.models()) {
    for (const v1::ModelInstance& i : m.instances()) {
      if (i.model_key() == kModel) slots = i.parallel_slots();
    }
  }
  EXPECT_EQ(slots, 4);
}

}  // namespace
}  // namespace lmgate
