// The gRPC shells end to end over loopback, with the in-memory FakeDriver behind them.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/server.h"

namespace lmgate::services {
namespace {

using backends::FakeDriver;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(FakeDriver::Options{}); }

  void Start(FakeDriver::Options fake_options) {
    auto fake = std::make_unique<FakeDriver>(std::move(fake_options));
    fake_ = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    ServerOptions opts;
    opts.listen = "127.0.0.1:0";
    opts.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
    opts.gateway.default_model = "fake/llm-small";
    opts.gateway.default_embedding_model = "fake/embed";
    opts.worker_threads = 4;
    opts.metrics_listen = "127.0.0.1:0";
    auto server = LmgateServer::Create(std::move(opts));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    inference_ = v1::Inference::NewStub(channel_);
    models_ = v1::ModelManager::NewStub(channel_);
  }

  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  static v1::ChatRequest HelloChat() {
    v1::ChatRequest req;
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("Say hello.");
    return req;
  }

  FakeDriver* fake_ = nullptr;
  std::unique_ptr<LmgateServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::ModelManager::Stub> models_;
};

TEST_F(ServerTest, HealthIsServing) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "lmgate.v1.Inference", "lmgate.v1.ModelManager"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

// Debian ships no reflection client headers: speak ServerReflectionInfo with raw bytes.
TEST_F(ServerTest, ReflectionListsBothServices) {
  grpc::ClientContext ctx;
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel_.get(), method, &ctx));
  const std::string list_services("\x3a\x00", 2);  // field 7 (list_services) = ""
  grpc::Slice slice(list_services);
  grpc::ByteBuffer request(&slice, 1);
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::ByteBuffer response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("lmgate.v1.ModelManager"), std::string::npos);
  EXPECT_NE(bytes.find("lmgate.v1.Inference"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, ChatStreamsDeltasThenResult) {
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  std::string text;
  v1::ChatResponse r;
  std::vector<v1::ChatResponse> got;
  while (reader->Read(&r)) got.push_back(r);
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(got.size(), 2u);
  for (size_t i = 0; i + 1 < got.size(); ++i) {
    EXPECT_NE(got[i].event_case(), v1::ChatResponse::kResult);
    if (got[i].has_content_delta()) text += got[i].content_delta();
  }
  ASSERT_TRUE(got.back().has_result());
  const auto& result = got.back().result();
  EXPECT_EQ(result.content(), text);
  backends::GenerateRequest expect;
  expect.chat = true;
  expect.messages.push_back({"user", "Say hello.", {}, "", ""});
  EXPECT_EQ(text, FakeDriver::ReplyFor(expect, 8));
  EXPECT_EQ(result.stats().driver(), v1::DRIVER_SDK);
  EXPECT_EQ(result.stats().stop_reason(), v1::STOP_REASON_EOS);
  EXPECT_EQ(result.stats().completion_tokens(), 8);
  EXPECT_EQ(result.stats().instance(), "fake/llm-small");
  const auto& md = ctx.GetServerInitialMetadata();
  ASSERT_EQ(md.count("x-lmgate-driver"), 1u);
  EXPECT_EQ(std::string(md.find("x-lmgate-driver")->second.data(),
                        md.find("x-lmgate-driver")->second.size()),
            "sdk_ws");
  EXPECT_EQ(md.count("x-request-id"), 1u);
}

TEST_F(ServerTest, ChatConvertsSamplingAndHonoursMaxTokens) {
  grpc::ClientContext ctx;
  v1::ChatRequest req = HelloChat();
  req.set_model("fake/llm-large");
  req.mutable_sampling()->set_max_tokens(3);
  req.mutable_sampling()->set_temperature(0.5);
  req.mutable_sampling()->add_stop("\n\n");
  req.set_no_deltas(true);
  auto reader = inference_->Chat(&ctx, req);
  std::vector<v1::ChatResponse> got;
  v1::ChatResponse r;
  while (reader->Read(&r)) got.push_back(r);
  ASSERT_TRUE(reader->Finish().ok());
  for (const auto& m : got) EXPECT_FALSE(m.has_content_delta());
  ASSERT_TRUE(got.back().has_result());
  EXPECT_EQ(got.back().result().stats().stop_reason(), v1::STOP_REASON_MAX_TOKENS);
  EXPECT_EQ(got.back().result().stats().completion_tokens(), 3);
  backends::GenerateRequest seen = fake_->last_request();
  EXPECT_EQ(seen.model, "fake/llm-large");
  EXPECT_EQ(seen.sampling.temperature, 0.5);
  EXPECT_EQ(seen.sampling.stop, std::vector<std::string>{"\n\n"});
}

// W3C trace context: a well-formed traceparent travels with the call to the driver (the HTTP
// drivers send it to LM Studio: client_test); anything else is dropped, not forwarded.
TEST_F(ServerTest, TraceparentReachesTheDriverWhenWellFormed) {
  const std::string good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (const auto& [sent, want] : std::vector<std::pair<std::string, std::string>>{
           {good, good},
           {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},  // upper case
           {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},  // zero trace id
           {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},  // invalid version
           {good + "-extra", ""},                                            // 00 has no more
           {"01" + good.substr(2) + "-extra", "01" + good.substr(2) + "-extra"},
           {"garbage", ""}}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("traceparent", sent);
    auto reader = inference_->Chat(&ctx, HelloChat());
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(fake_->last_traceparent(), want) << sent;
  }
}

TEST_F(ServerTest, CompleteStreams) {
  grpc::ClientContext ctx;
  v1::CompleteRequest req;
  req.set_prompt("Once upon a time");
  auto reader = inference_->Complete(&ctx, req);
  v1::ChatResponse r, last;
  std::string joined;  // deltas may be coalesced when the reader is behind; the text is whole
  while (reader->Read(&r)) {
    joined += r.content_delta();
    last = r;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(joined, last.result().content());
  EXPECT_EQ(last.result().stats().completion_tokens(), 8);
  EXPECT_FALSE(fake_->last_request().chat);
}

TEST_F(ServerTest, BadRequestsGetInvalidArgumentAndNothingReachesTheDriver) {
  struct Case {
    const char* name;
    v1::ChatRequest req;
  };
  std::vector<Case> cases;
  cases.push_back({"no messages", v1::ChatRequest()});
  v1::ChatRequest bad_role = HelloChat();
  bad_role.mutable_messages(0)->set_role("wizard");
  cases.push_back({"bad role", bad_role});
  v1::ChatRequest bad_temp = HelloChat();
  bad_temp.mutable_sampling()->set_temperature(7);
  cases.push_back({"temperature", bad_temp});
  v1::ChatRequest bad_driver = HelloChat();
  bad_driver.set_driver(static_cast<v1::Driver>(42));
  cases.push_back({"driver enum", bad_driver});
  v1::ChatRequest bad_schema = HelloChat();
  bad_schema.mutable_structured_output()->set_json_schema("{not json");
  cases.push_back({"schema", bad_schema});
  v1::ChatRequest zero_tokens = HelloChat();
  zero_tokens.mutable_sampling()->set_max_tokens(0);
  cases.push_back({"max_tokens", zero_tokens});
  for (auto& c : cases) {
    grpc::ClientContext ctx;
    auto reader = inference_->Chat(&ctx, c.req);
    v1::ChatResponse r;
    EXPECT_FALSE(reader->Read(&r)) << c.name;
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_FALSE(st.error_message().empty()) << c.name;
  }
  EXPECT_EQ(fake_->predictions_started(), 0);
}

TEST_F(ServerTest, ExplicitDriverThatIsNotEnabledFailsPrecondition) {
  grpc::ClientContext ctx;
  v1::ChatRequest req = HelloChat();
  req.set_driver(v1::DRIVER_OPENAI);
  auto reader = inference_->Chat(&ctx, req);
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("openai"), std::string::npos) << st.error_message();
}

TEST_F(ServerTest, ClientCancelStopsThePrediction) {
  fake_->HoldPredictions(true);
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  ASSERT_TRUE(fake_->WaitForHeldPredictions(1, absl::Seconds(10)));
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(fake_->WaitForActivePredictions(0, absl::Seconds(10)));
  EXPECT_EQ(fake_->predictions_cancelled(), 1);
}

TEST_F(ServerTest, DeadlineStopsThePrediction) {
  fake_->HoldPredictions(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(fake_->WaitForActivePredictions(0, absl::Seconds(10)));
}

TEST_F(ServerTest, DriverErrorsKeepTheirCode) {
  fake_->FailNext(1, absl::UnauthenticatedError("LM Studio: bad token"));
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(st.error_message(), "LM Studio: bad token");
}

TEST_F(ServerTest, EmbedReturnsOnePerInputInOrder) {
  grpc::ClientContext ctx;
  v1::EmbedRequest req;
  req.add_inputs("one");
  req.add_inputs("two");
  v1::EmbedResponse resp;
  ASSERT_TRUE(inference_->Embed(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.embeddings_size(), 2);
  EXPECT_EQ(resp.embeddings(1).index(), 1);
  EXPECT_EQ(resp.embeddings(0).values_size(), 3);
  EXPECT_EQ(resp.model_key(), "fake/embed");

  grpc::ClientContext ctx2;
  v1::EmbedRequest empty;
  EXPECT_EQ(inference_->Embed(&ctx2, empty, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, TokenizeAndCountTokens) {
  v1::TokenizeRequest req;
  req.set_text("one two three");
  {
    grpc::ClientContext ctx;
    v1::TokenizeResponse resp;
    ASSERT_TRUE(inference_->Tokenize(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.tokens_size(), 3);
  }
  {
    grpc::ClientContext ctx;
    v1::CountTokensResponse resp;
    ASSERT_TRUE(inference_->CountTokens(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.token_count(), 3);
  }
}

TEST_F(ServerTest, ListGetLoadUnload) {
  {
    grpc::ClientContext ctx;
    v1::ListModelsResponse resp;
    ASSERT_TRUE(models_->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
    ASSERT_EQ(resp.models_size(), 3);
    EXPECT_EQ(resp.models(0).state(), v1::MODEL_STATE_NOT_LOADED);
  }
  {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_model("fake/llm-small");
    req.mutable_config()->set_context_length(2048);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r, last;
    int progress = 0;
    while (reader->Read(&r)) {
      progress += r.has_progress();
      last = r;
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_GE(progress, 1);
    ASSERT_TRUE(last.has_instance());
    EXPECT_EQ(last.instance().identifier(), "fake/llm-small");
    EXPECT_EQ(last.instance().context_length(), 2048);
  }
  {
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.set_model("fake/llm-small");
    v1::Model m;
    ASSERT_TRUE(models_->GetModel(&ctx, req, &m).ok());
    EXPECT_EQ(m.state(), v1::MODEL_STATE_READY);
    ASSERT_EQ(m.instances_size(), 1);
  }
  {
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.set_model("no/such-model");
    v1::Model m;
    grpc::Status st = models_->GetModel(&ctx, req, &m);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(st.error_message().find("fake/llm-small"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    v1::UnloadModelRequest req;
    req.set_model("fake/llm-small");
    v1::UnloadModelResponse resp;
    ASSERT_TRUE(models_->UnloadModel(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.unloaded_size(), 1);
    EXPECT_EQ(fake_->unloads(), 1);
  }
}

TEST_F(ServerTest, LoadValidationAndCancel) {
  {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_model("fake/llm-small");
    req.mutable_config()->set_gpu_offload_ratio(1.5);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  fake_->HoldLoads(true);
  grpc::ClientContext ctx;
  v1::LoadModelRequest req;
  req.set_model("fake/llm-small");
  auto reader = models_->LoadModel(&ctx, req);
  ASSERT_TRUE(fake_->WaitForHeldLoads(1, absl::Seconds(10)));
  ctx.TryCancel();
  v1::LoadModelResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerTest, WatchModelsStreamsLifecycleEvents) {
  grpc::ClientContext watch_ctx;
  v1::WatchModelsRequest wreq;
  wreq.set_include_snapshot(true);
  auto watch = models_->WatchModels(&watch_ctx, wreq);
  v1::ModelEvent e;
  // Snapshot first: one event per known model.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(watch->Read(&e));
    EXPECT_EQ(e.kind(), v1::ModelEvent::KIND_SNAPSHOT);
  }
  // A chat for an unloaded model loads it: the watcher sees the load.
  {
    grpc::ClientContext ctx;
    auto reader = inference_->Chat(&ctx, HelloChat());
    v1::ChatResponse r;
    bool loading_progress = false;
    while (reader->Read(&r)) loading_progress |= r.has_model_loading();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_TRUE(loading_progress);
  }
  std::vector<v1::ModelEvent::Kind> kinds;
  while (watch->Read(&e)) {
    kinds.push_back(e.kind());
    if (e.kind() == v1::ModelEvent::KIND_LOADED) break;
  }
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), v1::ModelEvent::KIND_LOAD_STARTED);
  EXPECT_EQ(kinds.back(), v1::ModelEvent::KIND_LOADED);
  EXPECT_EQ(e.model_key(), "fake/llm-small");
  EXPECT_EQ(e.state(), v1::MODEL_STATE_READY);
  watch_ctx.TryCancel();
  while (watch->Read(&e)) {
  }
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerTest, UnloadOfABusyInstanceNamesTheHolder) {
  fake_->HoldPredictions(true);
  grpc::ClientContext chat_ctx;
  chat_ctx.AddMetadata("x-request-id", "busy-chat-7");
  auto reader = inference_->Chat(&chat_ctx, HelloChat());
  ASSERT_TRUE(fake_->WaitForHeldPredictions(1, absl::Seconds(10)));
  grpc::ClientContext ctx;
  v1::UnloadModelRequest req;
  req.set_model("fake/llm-small");
  v1::UnloadModelResponse resp;
  grpc::Status st = models_->UnloadModel(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("busy-chat-7"), std::string::npos) << st.error_message();
  // force: the stream ends with UNAVAILABLE and the instance is gone.
  grpc::ClientContext ctx2;
  req.set_force(true);
  ASSERT_TRUE(models_->UnloadModel(&ctx2, req, &resp).ok());
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(fake_->WaitForActivePredictions(0, absl::Seconds(10)));
}

TEST_F(ServerTest, RequestsBeyondTheModelsSlotsQueueAndSeeTheirPosition) {
  fake_->HoldPredictions(true);
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ChatResponse>>> readers;
  for (int i = 0; i < 4; ++i) {  // the default 4 slots per model
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(inference_->Chat(ctxs.back().get(), HelloChat()));
  }
  ASSERT_TRUE(fake_->WaitForHeldPredictions(4, absl::Seconds(10)));
  grpc::ClientContext ctx;
  auto fifth = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  ASSERT_TRUE(fifth->Read(&r));
  ASSERT_TRUE(r.has_queued()) << r.DebugString();
  EXPECT_EQ(r.queued().position(), 1);
  EXPECT_EQ(fake_->predictions_started(), 4);
  fake_->HoldPredictions(false);
  v1::InferenceResult result;
  while (fifth->Read(&r)) {
    if (r.has_result()) result = r.result();
  }
  ASSERT_TRUE(fifth->Finish().ok());
  EXPECT_GT(absl::ToDoubleMicroseconds(absl::Seconds(result.stats().queue_wait().seconds()) +
                                       absl::Nanoseconds(result.stats().queue_wait().nanos())),
            0);
  for (auto& rd : readers) {
    while (rd->Read(&r)) {
    }
    EXPECT_TRUE(rd->Finish().ok());
  }
}

TEST_F(ServerTest, PerModelReadinessFollowsTheLifecycle) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto check = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = health->Check(&ctx, req, &resp);
    return st.ok() ? resp.status() : grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN;
  };
  // Known but not loaded, and a name the host never had, answer alike: the unauthenticated
  // health port does not say which models exist.
  EXPECT_EQ(check("lmgate.model/fake/llm-small"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check("lmgate.model/no/such-model"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(check("lmgate.model/fake/llm-small"), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ClientContext uctx;
  v1::UnloadModelRequest ureq;
  ureq.set_model("fake/llm-small");
  v1::UnloadModelResponse uresp;
  ASSERT_TRUE(models_->UnloadModel(&uctx, ureq, &uresp).ok());
  EXPECT_EQ(check("lmgate.model/fake/llm-small"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check("lmgate.model/no/such-model"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check("no.such.Service"), grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN);
}

TEST_F(ServerTest, PerModelWatchFollowsTheLifecycleAndUnknownNamesLookNotLoaded) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("lmgate.model/fake/llm-small");
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto watch = health->Watch(&wctx, req);
  grpc::health::v1::HealthCheckResponse r;
  ASSERT_TRUE(watch->Read(&r));
  EXPECT_EQ(r.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  grpc::health::v1::HealthCheckRequest unknown_req;
  unknown_req.set_service("lmgate.model/no/such-model");
  grpc::ClientContext uwctx;
  uwctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto unknown_watch = health->Watch(&uwctx, unknown_req);
  ASSERT_TRUE(unknown_watch->Read(&r));
  EXPECT_EQ(r.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse c;
  while (reader->Read(&c)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(watch->Read(&r));
  EXPECT_EQ(r.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  wctx.TryCancel();
  uwctx.TryCancel();
  while (watch->Read(&r)) {
  }
  while (unknown_watch->Read(&r)) {
  }
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(unknown_watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerTest, DrainLetsRunningStreamsFinish) {
  fake_->HoldPredictions(true);
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  ASSERT_TRUE(fake_->WaitForHeldPredictions(1, absl::Seconds(10)));
  std::thread drain([&] { server_->Shutdown(absl::Seconds(30)); });
  // The stream is still running while the server drains; let it finish.
  fake_->HoldPredictions(false);
  v1::ChatResponse r;
  bool got_result = false;
  while (reader->Read(&r)) got_result |= r.has_result();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(got_result);
  drain.join();
}

TEST_F(ServerTest, DrainCancelsStreamsThatOutliveTheGracePeriod) {
  fake_->HoldPredictions(true);
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  ASSERT_TRUE(fake_->WaitForHeldPredictions(1, absl::Seconds(10)));
  server_->Shutdown(absl::Milliseconds(100));
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_TRUE(fake_->WaitForActivePredictions(0, absl::Seconds(10)));  // cancelled upstream
}

// Plain HTTP GET against the metrics endpoint.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST_F(ServerTest, MetricsEndpointReportsCalls) {
  grpc::ClientContext ctx;
  auto reader = inference_->Chat(&ctx, HelloChat());
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  const std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find(" 200 OK\r\n"), std::string::npos) << body;
  EXPECT_NE(body.find("lmgate_requests_total{method=\"Chat\",tenant=\"anonymous\","
                      "model=\"fake/llm-small\",driver=\"sdk_ws\",code=\"OK\"} 1"),
            std::string::npos)
      << body;
  for (const char* name : {"lmgate_time_to_first_token_seconds_bucket", "lmgate_tokens_total",
                           "lmgate_overhead_seconds_count", "lmgate_queue_depth",
                           "lmgate_model_load_seconds_count", "lmgate_queue_wait_seconds_sum"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name;
  }
}

TEST_F(ServerTest, ManyConcurrentStreams) {
  constexpr int kStreams = 64;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&] {
      grpc::ClientContext ctx;
      auto reader = inference_->Chat(&ctx, HelloChat());
      v1::ChatResponse r;
      bool has_result = false;
      while (reader->Read(&r)) has_result |= r.has_result();
      if (reader->Finish().ok() && has_result) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kStreams);
  EXPECT_EQ(fake_->predictions_active(), 0);
}

}  // namespace
}  // namespace lmgate::services
