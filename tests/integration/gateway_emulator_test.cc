// lmgate end to end: gRPC client → LmgateServer (real drivers, lifecycle) → LM Studio emulator.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "backends/builtin.h"
#include "backends/registry.h"
#include "backends/selector.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

// Polls `pred` (an out-of-band counter of the emulator has no notification) until true or
// `timeout`; returns the time it took, or nullopt.
template <typename Pred>
std::optional<absl::Duration> WaitUntil(Pred pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time start = absl::Now();
  while (absl::Now() - start < timeout) {
    if (pred()) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return std::nullopt;
}

class GatewayEmulatorTest : public testutil::GatewayFixture {
 protected:
  // The seeded 12-token chat of every test.
  static v1::ChatRequest Request(v1::Driver driver = v1::DRIVER_AUTO) {
    return ChatRequest(driver, /*max_tokens=*/12);
  }

  // Runs a chat to the end; returns the final result. Without `status`, the call must succeed
  // and the streamed deltas must add up to the result's content.
  v1::InferenceResult RunChat(const v1::ChatRequest& req, grpc::Status* status = nullptr) {
    testutil::ChatOutcome o = Chat(req, absl::Seconds(20));
    if (status != nullptr) {
      *status = o.status;
    } else {
      EXPECT_TRUE(o.status.ok()) << o.status.error_message();
      EXPECT_EQ(o.joined, o.result.content());
    }
    return o.result;
  }
};

TEST_F(GatewayEmulatorTest, FiftyConcurrentChatsForAnUnloadedModelMakeOneUpstreamLoad) {
  constexpr int kChats = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kChats; ++i) {
    threads.emplace_back([&] {
      grpc::Status st;
      v1::InferenceResult r = RunChat(Request(), &st);
      if (st.ok() && !r.content().empty()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kChats);
  EXPECT_EQ(Stat("loads_started"), 1);
  EXPECT_EQ(Stat("predictions_active"), 0);
}

TEST_F(GatewayEmulatorTest, SameChatThroughEveryDriverGivesTheSameText) {
  const std::string sdk = RunChat(Request(v1::DRIVER_SDK)).content();
  EXPECT_FALSE(sdk.empty());
  for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    v1::InferenceResult r = RunChat(Request(d));
    EXPECT_EQ(r.content(), sdk) << v1::Driver_Name(d);
    EXPECT_EQ(r.stats().driver(), d);
    EXPECT_EQ(r.stats().stop_reason(), v1::STOP_REASON_MAX_TOKENS) << v1::Driver_Name(d);
    EXPECT_EQ(r.stats().completion_tokens(), 12) << v1::Driver_Name(d);
  }
  EXPECT_EQ(Stat("loads_started"), 1);  // lmgate loaded once; no JIT loads behind its back
}

TEST_F(GatewayEmulatorTest, ClientCancelStopsTheUpstreamPredictionOnEveryDriver) {
  emulator::Settings s = emu_->settings();
  s.tokens_per_second = 20;
  s.min_response_tokens = s.max_response_tokens = 400;
  emu_->SetSettings(s);
  for (v1::Driver d : {v1::DRIVER_SDK, v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    grpc::ClientContext ctx;
    v1::ChatRequest req = Request(d);
    req.mutable_sampling()->clear_max_tokens();
    auto reader = inference_->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r) && !r.has_content_delta()) {
    }
    ASSERT_EQ(Stat("predictions_active"), 1) << v1::Driver_Name(d);
    ctx.TryCancel();
    auto took = WaitUntil([&] { return Stat("predictions_active") == 0; },
                          testutil::Scaled(absl::Seconds(10)));
    ASSERT_TRUE(took.has_value()) << v1::Driver_Name(d) << ": prediction still running upstream";
    std::printf("cancel reached the host via %s in %.1f ms\n", v1::Driver_Name(d).c_str(),
                absl::ToDoubleMilliseconds(*took));
    EXPECT_LT(*took, testutil::Scaled(absl::Milliseconds(500))) << v1::Driver_Name(d);
    while (reader->Read(&r)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
}

TEST_F(GatewayEmulatorTest, LoadChatUnloadReloadTenTimesOverOneConnection) {
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext lctx;
    v1::LoadModelRequest lreq;
    lreq.set_model(kModel);
    auto loader = models_->LoadModel(&lctx, lreq);
    v1::LoadModelResponse lr;
    while (loader->Read(&lr)) {
    }
    ASSERT_TRUE(loader->Finish().ok()) << i;
    RunChat(Request(v1::DRIVER_SDK));
    grpc::ClientContext uctx;
    v1::UnloadModelRequest ureq;
    ureq.set_model(kModel);
    v1::UnloadModelResponse ur;
    grpc::Status st = models_->UnloadModel(&uctx, ureq, &ur);
    ASSERT_TRUE(st.ok()) << i << ": " << st.error_message();
  }
  EXPECT_EQ(Stat("loads_started"), 10);
  EXPECT_EQ(Stat("unloads"), 10);
  // One socket per namespace used (llm, system), opened once and reused by all ten cycles.
  EXPECT_LE(Stat("ws_connections_total"), 3);
}

TEST_F(GatewayEmulatorTest, EmbedThroughEachDriverAndTokenize) {
  std::vector<std::vector<float>> first;
  for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_OPENAI, v1::DRIVER_SDK}) {
    grpc::ClientContext ctx;
    v1::EmbedRequest req;
    req.add_inputs("hello world");
    req.add_inputs("second input");
    req.set_driver(d);
    v1::EmbedResponse resp;
    grpc::Status st = inference_->Embed(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << v1::Driver_Name(d) << ": " << st.error_message();
    ASSERT_EQ(resp.embeddings_size(), 2);
    std::vector<float> v(resp.embeddings(0).values().begin(), resp.embeddings(0).values().end());
    if (first.empty()) {
      first.push_back(v);
    } else {
      EXPECT_EQ(v, first[0]) << v1::Driver_Name(d);
    }
  }
  grpc::ClientContext ctx;
  v1::TokenizeRequest treq;
  treq.set_text("one two three");
  v1::CountTokensResponse count;
  ASSERT_TRUE(inference_->CountTokens(&ctx, treq, &count).ok());
  EXPECT_GT(count.token_count(), 0);
}

TEST_F(GatewayEmulatorTest, WebSocketDroppedMidStreamIsUnavailableThenRecovers) {
  RunChat(Request(v1::DRIVER_SDK));  // loaded, connected
  emu_->DropAfterFragments(2);
  grpc::Status st;
  RunChat(Request(v1::DRIVER_SDK), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  v1::InferenceResult again = RunChat(Request(v1::DRIVER_SDK));
  EXPECT_FALSE(again.content().empty());
}

TEST_F(GatewayEmulatorTest, UnknownModelIsNotFoundWithSuggestions) {
  v1::ChatRequest req = Request();
  req.set_model("qwen/qwen3-4");
  grpc::Status st;
  RunChat(req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("qwen/qwen3-4b"), std::string::npos) << st.error_message();
  EXPECT_EQ(Stat("loads_started"), 0);
}

TEST_F(GatewayEmulatorTest, ListModelsShowsTheHostCatalogueAndStates) {
  RunChat(Request());
  grpc::ClientContext ctx;
  v1::ListModelsRequest req;
  req.set_refresh(true);
  v1::ListModelsResponse resp;
  ASSERT_TRUE(models_->ListModels(&ctx, req, &resp).ok());
  int ready = 0;
  for (const auto& m : resp.models()) {
    if (m.key() == kModel) {
      EXPECT_EQ(m.state(), v1::MODEL_STATE_READY);
      EXPECT_GT(m.max_context_length(), 0);
      ASSERT_EQ(m.instances_size(), 1);
      ++ready;
    }
  }
  EXPECT_EQ(ready, 1);
  EXPECT_GE(resp.models_size(), 5);
}

// REST and OpenAI have no field for the overflow policy: AUTO serves such a chat through the SDK,
// an explicit REST/OpenAI driver answers UNIMPLEMENTED (the policy was silently dropped).
TEST_F(GatewayEmulatorTest, ContextOverflowPolicyIsCarriedOrRefused) {
  v1::ChatRequest req = Request();
  req.set_context_overflow_policy(v1::CONTEXT_OVERFLOW_POLICY_STOP_AT_LIMIT);
  EXPECT_EQ(RunChat(req).stats().driver(), v1::DRIVER_SDK);
  const int predictions = Stat("predictions_started");
  for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    req.set_driver(d);
    grpc::Status st;
    RunChat(req, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED) << v1::Driver_Name(d);
    EXPECT_NE(st.error_message().find("context overflow policy"), std::string::npos)
        << st.error_message();
    EXPECT_NE(st.error_message().find("drivers that can: sdk_ws"), std::string::npos)
        << st.error_message();
  }
  EXPECT_EQ(Stat("predictions_started"), predictions);
}

}  // namespace
}  // namespace lmgate

namespace lmgate {
namespace {

// ListModels lists through the driver the caller names and says which driver answered: a model
// loaded outside lmgate shows at once through REST and SDK, while the synchronised (AUTO, no
// refresh) view has not seen it yet.
TEST_F(GatewayEmulatorTest, ListModelsListsThroughTheNamedDriver) {
  ASSERT_TRUE(emu_->Load(kModel, std::string("outside")).ok());
  for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_SDK}) {
    grpc::ClientContext ctx;
    v1::ListModelsRequest req;
    req.set_driver(d);
    req.set_loaded_only(true);
    v1::ListModelsResponse resp;
    grpc::Status st = models_->ListModels(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << v1::Driver_Name(d) << ": " << st.error_message();
    EXPECT_EQ(resp.driver(), d);
    ASSERT_EQ(resp.models_size(), 1) << v1::Driver_Name(d);
    EXPECT_EQ(resp.models(0).key(), kModel);
    ASSERT_EQ(resp.models(0).instances_size(), 1);
    EXPECT_EQ(resp.models(0).instances(0).identifier(), "outside");
  }
  grpc::ClientContext ctx;
  v1::ListModelsRequest req;
  req.set_loaded_only(true);
  v1::ListModelsResponse resp;
  ASSERT_TRUE(models_->ListModels(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.models_size(), 0);  // lmgate's view, synced before the outside load
  EXPECT_NE(resp.driver(), v1::DRIVER_AUTO);  // the driver of that sync
}

// Without refresh, a host lmgate never reached is UNAVAILABLE (not OK with an empty list).
TEST(ListModelsNeverReachedTest, UnavailableNamingTheHost) {
  backends::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterBuiltinBackends(registry).ok());
  backends::HostConfig host;
  host.base_url = "http://127.0.0.1:1";  // loopback, nothing listens: connection refused
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  for (const char* name : {"rest", "openai"}) {
    auto d = registry.Create(name, host);
    ASSERT_TRUE(d.ok()) << d.status();
    drivers.push_back(*std::move(d));
  }
  services::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.worker_threads = 2;
  so.gateway.lifecycle.refresh_interval = absl::ZeroDuration();
  so.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
  auto server = services::LmgateServer::Create(std::move(so));
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::ModelManager::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListModelsResponse resp;
  grpc::Status st = stub->ListModels(&ctx, v1::ListModelsRequest(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("127.0.0.1:1"), std::string::npos) << st.error_message();
  (*server)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace lmgate
