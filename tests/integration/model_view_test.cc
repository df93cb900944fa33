// The model view stays true (issue 18): what lmgate reports about instances follows the host,
// and a generation the host cut short never ends OK.
#include <map>
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


// The host's JIT loading off (LM Studio's "Just in time model loading" switch).
class JitOffTest : public ModelViewTest {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig&,
                 services::ServerOptions&) override {
    emulator.settings.jit_enabled = false;
  }

  // The host's loaded instances (emulator stats), each as `identifier` → `jit`.
  std::map<std::string, bool> HostInstances() {
    std::map<std::string, bool> out;
    const nlohmann::json stats = emu_->Stats();  // the loop must not outlive it
    for (const auto& i : stats["loaded_instances"]) {
      out[i["identifier"].get<std::string>()] = i.value("jit", false);
    }
    return out;
  }
};

// Bug 2: with JIT off, a model unloaded at the host behind lmgate's back is loaded again by
// lmgate on the next Chat through an HTTP driver; the host's "No models loaded" never reaches
// the caller.
TEST_F(JitOffTest, ChatOnHttpDriversReloadsAModelUnloadedAtTheHost) {
  for (v1::Driver driver : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    SCOPED_TRACE(v1::Driver_Name(driver));
    ASSERT_TRUE(Load(kModel, "").ok());
    ASSERT_TRUE(emu_->Unload(kModel).ok());
    ASSERT_TRUE(HostInstances().empty());
    testutil::ChatOutcome o = Chat(ChatRequest(driver), testutil::Scaled(absl::Seconds(20)));
    EXPECT_TRUE(o.status.ok()) << o.status.error_code() << " " << o.status.error_message();
    EXPECT_TRUE(o.got_result);
    EXPECT_EQ(HostInstances(), (std::map<std::string, bool>{{kModel, false}}));
  }
}

// Bug 2, another model still loaded: the host names the missing one an invalid identifier.
TEST_F(JitOffTest, ChatReloadsWhileAnotherModelIsLoaded) {
  ASSERT_TRUE(Load(kModel, "").ok());
  ASSERT_TRUE(emu_->Load("google/gemma-3-1b").ok());
  ASSERT_TRUE(emu_->Unload(kModel).ok());
  for (v1::Driver driver : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    SCOPED_TRACE(v1::Driver_Name(driver));
    testutil::ChatOutcome o = Chat(ChatRequest(driver), testutil::Scaled(absl::Seconds(20)));
    EXPECT_TRUE(o.status.ok()) << o.status.error_code() << " " << o.status.error_message();
    EXPECT_EQ(HostInstances().count(kModel), 1u);
    ASSERT_TRUE(emu_->Unload(kModel).ok());
  }
}

// Bug 2: LoadModel does not answer OK with an instance the host no longer has.
TEST_F(JitOffTest, LoadModelLoadsAgainAfterAnUnloadAtTheHost) {
  ASSERT_TRUE(Load(kModel, "").ok());
  ASSERT_TRUE(emu_->Unload(kModel).ok());
  const int loads = Stat("loads_started");
  grpc::Status st = Load(kModel, "");
  EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  EXPECT_EQ(Stat("loads_started"), loads + 1);
  EXPECT_EQ(HostInstances(), (std::map<std::string, bool>{{kModel, false}}));
  // Loaded and known: a second LoadModel is the idempotent no-op again.
  ASSERT_TRUE(Load(kModel, "").ok());
  EXPECT_EQ(Stat("loads_started"), loads + 1);
}

// Bug 5: an identifier in use with other settings is ALREADY_EXISTS; the same settings answer
// the instance; answers and LOADED events echo every applied setting and the durations.
TEST_F(ModelViewTest, ReloadingAnIdentifierEchoesSettingsAndRefusesOtherOnes) {
  grpc::ClientContext wctx;
  wctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
  v1::WatchModelsRequest wreq;
  wreq.set_model(kModel);
  auto watch = models_->WatchModels(&wctx, wreq);

  auto load = [&](int context_length, v1::LoadModelResponse* last) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::LoadModelRequest req;
    req.set_model(kModel);
    req.mutable_config()->set_identifier("primary");
    req.mutable_config()->set_context_length(context_length);
    req.mutable_config()->set_flash_attention(true);
    req.mutable_config()->set_eval_batch_size(256);
    req.mutable_config()->set_gpu_offload_ratio(0.5);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
      if (r.has_instance()) *last = r;
    }
    return reader->Finish();
  };
  v1::LoadModelResponse first;
  ASSERT_TRUE(load(4096, &first).ok());
  const v1::LoadConfig& c = first.instance().load_config();
  EXPECT_EQ(c.identifier(), "primary");
  EXPECT_EQ(c.context_length(), 4096);
  EXPECT_TRUE(c.has_flash_attention() && c.flash_attention()) << c.ShortDebugString();
  EXPECT_EQ(c.eval_batch_size(), 256) << c.ShortDebugString();
  EXPECT_DOUBLE_EQ(c.gpu_offload_ratio(), 0.5) << c.ShortDebugString();
  EXPECT_TRUE(first.has_load_duration()) << first.ShortDebugString();

  v1::ModelEvent e;
  bool loaded_event = false;
  while (!loaded_event && watch->Read(&e)) loaded_event = e.kind() == v1::ModelEvent::KIND_LOADED;
  ASSERT_TRUE(loaded_event);
  EXPECT_EQ(e.load_config().context_length(), 4096) << e.ShortDebugString();
  EXPECT_EQ(e.load_config().eval_batch_size(), 256) << e.ShortDebugString();
  EXPECT_TRUE(e.load_config().flash_attention()) << e.ShortDebugString();
  EXPECT_TRUE(e.has_duration());
  wctx.TryCancel();
  while (watch->Read(&e)) {
  }
  (void)watch->Finish();

  const int loads = Stat("loads_started");
  v1::LoadModelResponse again;
  grpc::Status same = load(4096, &again);
  EXPECT_TRUE(same.ok()) << same.error_code() << " " << same.error_message();
  EXPECT_EQ(again.instance().identifier(), "primary");
  EXPECT_FALSE(again.has_load_duration()) << "nothing was loaded";
  EXPECT_EQ(again.instance().load_config().eval_batch_size(), 256);

  v1::LoadModelResponse other;
  grpc::Status different = load(8192, &other);
  EXPECT_EQ(different.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << different.error_code() << " " << different.error_message();
  EXPECT_TRUE(absl::StrContains(different.error_message(), "context_length 8192 (loaded: 4096)"))
      << different.error_message();
  EXPECT_EQ(Stat("loads_started"), loads);

  grpc::ClientContext uctx;
  uctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
  v1::UnloadModelRequest ureq;
  ureq.set_model("primary");
  v1::UnloadModelResponse uresp;
  ASSERT_TRUE(models_->UnloadModel(&uctx, ureq, &uresp).ok());
  EXPECT_TRUE(uresp.has_unload_duration()) << uresp.ShortDebugString();
}

}  // namespace
}  // namespace lmgate
