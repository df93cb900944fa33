// The model view stays true (issue 18): what lmgate reports about instances follows the host,
// and a generation the host cut short never ends OK.
#include <string>

#include "absl/time/clock.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

class ModelViewTest : public testutil::GatewayFixture {
 protected:
  grpc::Status Load(const std::string& model, const std::string& identifier) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::LoadModelRequest req;
    req.set_model(model);
    req.mutable_config()->set_identifier(identifier);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  grpc::Status Unload(const std::string& model) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::UnloadModelRequest req;
    req.set_model(model);
    v1::UnloadModelResponse resp;
    return models_->UnloadModel(&ctx, req, &resp);
  }

  v1::ListModelsResponse List(bool refresh) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::ListModelsRequest req;
    req.set_refresh(refresh);
    v1::ListModelsResponse resp;
    grpc::Status st = models_->ListModels(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  grpc::Status ChatBy(const std::string& model) {
    v1::ChatRequest req = ChatRequest(v1::DRIVER_AUTO);
    req.set_model(model);
    return Chat(req, testutil::Scaled(absl::Seconds(20))).status;
  }
};

// A host listing instances with a custom identifier as rows of their own (the real host's
// /api/v0/models).
class IdentifierRowsTest : public ModelViewTest {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig&,
                 services::ServerOptions&) override {
    emulator.settings.v0_identifier_rows = true;
  }
};

// Bug 1: after a re-read of the host, an entry whose id is a loaded instance's identifier is
// that instance, attached to its model key; never a downloaded model of its own.
TEST_F(IdentifierRowsTest, CustomIdentifierSurvivesARefresh) {
  ASSERT_TRUE(Load(kModel, "primary").ok());
  ASSERT_TRUE(ChatBy("primary").ok());
  const int loads = Stat("loads_started");

  v1::ListModelsResponse list = List(/*refresh=*/true);
  int with_instance = 0;
  for (const v1::Model& m : list.models()) {
    EXPECT_NE(m.key(), "primary") << "bogus model row: " << m.ShortDebugString();
    for (const v1::ModelInstance& i : m.instances()) {
      if (i.identifier() == "primary") {
        EXPECT_EQ(m.key(), kModel);
        ++with_instance;
      }
    }
  }
  EXPECT_EQ(with_instance, 1);

  grpc::Status chat = ChatBy("primary");
  EXPECT_TRUE(chat.ok()) << chat.error_code() << " " << chat.error_message();
  EXPECT_EQ(Stat("loads_started"), loads) << "lmgate asked the host for another load";
  grpc::Status unload = Unload("primary");
  EXPECT_TRUE(unload.ok()) << unload.error_code() << " " << unload.error_message();
  EXPECT_TRUE(emu_->Stats()["loaded_instances"].empty()) << emu_->Stats()["loaded_instances"];
}

// Bug 3: an unload made at the host (not through lmgate) mid-stream ends the call UNAVAILABLE
// naming the cause, not OK with STOP_REASON_MODEL_UNLOADED and truncated text.
TEST_F(ModelViewTest, StreamCutByAnUnloadOutsideLmgateEndsUnavailable) {
  SetTokens(/*tokens_per_second=*/200, /*response_tokens=*/400);
  v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK, /*max_tokens=*/400);
  absl::Status unload;
  testutil::ChatOutcome o = Chat(req, testutil::Scaled(absl::Seconds(20)),
                                 [&] { unload = emu_->Unload(kModel); });
  ASSERT_TRUE(unload.ok()) << unload;
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << o.status.error_code() << " " << o.status.error_message()
      << " stop_reason=" << v1::StopReason_Name(o.result.stats().stop_reason());
  EXPECT_TRUE(absl::StrContains(o.status.error_message(), "unloaded outside lmgate"))
      << o.status.error_message();
  EXPECT_FALSE(o.got_result);
}

}  // namespace
}  // namespace lmgate
