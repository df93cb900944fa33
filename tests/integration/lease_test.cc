// One lease grants the model, the instance and its slot (issue 18): through the gRPC API against
// the emulator, requests queue per resolved instance with that instance's own parallel slots,
// whatever name they used, and an unload of an instance with queued requests fails them cleanly.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backends/http/client.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

// Polls `pred` (the emulator's counters have no notification) until true or `timeout`.
template <typename Pred>
bool WaitUntil(Pred pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + testutil::Scaled(timeout);
  while (absl::Now() < until) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return pred();
}

// One streaming Chat on its own thread; the test may cancel it and reads what it saw.
class AsyncChat {
 public:
  AsyncChat(v1::Inference::Stub* stub, v1::ChatRequest req) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(60))));
    thread_ = std::thread([this, stub, req = std::move(req)] {
      auto reader = stub->Chat(&ctx_, req);
      v1::ChatResponse r;
      while (reader->Read(&r)) {
        if (r.has_queued()) queued_ = true;
        if (r.has_content_delta()) delta_ = true;
      }
      grpc::Status st = reader->Finish();
      absl::MutexLock lock(&mu_);
      status_ = st;
      done_ = true;
    });
  }
  ~AsyncChat() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool queued() const { return queued_; }
  bool streaming() const { return delta_; }
  void Cancel() { ctx_.TryCancel(); }
  grpc::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  std::atomic<bool> queued_{false};
  std::atomic<bool> delta_{false};
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// One unary call on its own thread (Tokenize, CountTokens), cancellable by the test.
class AsyncUnary {
 public:
  explicit AsyncUnary(std::function<grpc::Status(grpc::ClientContext*)> call) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(60))));
    thread_ = std::thread([this, call = std::move(call)] {
      grpc::Status st = call(&ctx_);
      absl::MutexLock lock(&mu_);
      status_ = st;
      done_ = true;
    });
  }
  ~AsyncUnary() {
    ctx_.TryCancel();
    thread_.join();
  }
  void Cancel() { ctx_.TryCancel(); }
  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  grpc::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class LeaseTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&,
                 services::ServerOptions& server) override {
    server.metrics_listen = "127.0.0.1:0";
  }

  // A gauge of /metrics for kModel (0 when absent: no queue exists).
  int Gauge(const std::string& name) {
    backends::http::HttpClient::Options o;
    o.base_url = absl::StrCat("http://127.0.0.1:", server_->metrics_port());
    auto client = backends::http::HttpClient::Create(o);
    if (!client.ok()) return -1;
    backends::CallContext ctx;
    ctx.deadline = absl::Now() + absl::Seconds(10);
    backends::http::HttpRequest req;
    req.path = "/metrics";
    auto resp = (*client)->Do(ctx, req);
    if (!resp.ok()) return -1;
    const std::string prefix = absl::StrCat(name, "{model=\"", kModel, "\"} ");
    for (absl::string_view line : absl::StrSplit(resp->body, '\n')) {
      if (!absl::StartsWith(line, prefix)) continue;
      double v = 0;
      if (absl::SimpleAtod(line.substr(prefix.size()), &v)) return static_cast<int>(v);
    }
    return 0;
  }

  std::unique_ptr<AsyncUnary> Tokenize(const std::string& model, bool count) {
    v1::TokenizeRequest req;
    req.set_model(model);
    req.set_text("how many tokens is this");
    auto* stub = inference_.get();
    return std::make_unique<AsyncUnary>([stub, req, count](grpc::ClientContext* ctx) {
      if (count) {
        v1::CountTokensResponse resp;
        return stub->CountTokens(ctx, req, &resp);
      }
      v1::TokenizeResponse resp;
      return stub->Tokenize(ctx, req, &resp);
    });
  }

  // Index in the emulator's frame log of the first SDK frame with this type and endpoint.
  int FrameIndex(const std::string& type, const std::string& endpoint) {
    auto frames = emu_->Frames();
    for (size_t i = 0; i < frames.size(); ++i) {
      const auto& j = frames[i].value("json", nlohmann::json::object());
      if (j.is_object() && j.value("type", "") == type && j.value("endpoint", "") == endpoint) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  grpc::Status Load(const std::string& identifier, int parallel_slots) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::LoadModelRequest req;
    req.set_model(kModel);
    req.set_new_instance(true);
    req.mutable_config()->set_identifier(identifier);
    req.mutable_config()->set_parallel_slots(parallel_slots);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  grpc::Status Unload(const std::string& model, bool force) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    v1::UnloadModelRequest req;
    req.set_model(model);
    req.set_force(force);
    v1::UnloadModelResponse resp;
    return models_->UnloadModel(&ctx, req, &resp);
  }

  static v1::ChatRequest Named(const std::string& model) {
    v1::ChatRequest req = ChatRequest(v1::DRIVER_AUTO, std::nullopt);
    req.set_model(model);
    return req;
  }

  // Starts a long prediction on `model` and returns once it streams.
  std::unique_ptr<AsyncChat> StartLong(const std::string& model) {
    SetTokens(20, 400);  // 20 s unless cancelled
    auto chat = std::make_unique<AsyncChat>(inference_.get(), Named(model));
    EXPECT_TRUE(WaitUntil([&] { return chat->streaming(); })) << "the first chat never streamed";
    return chat;
  }
};

// The measured bug: with admission keyed by the caller's string, `mine` (parallel_slots = 1)
// named by its identifier twice and by its model key twice ran three predictions at once.
TEST_F(LeaseTest, OneSlotInstanceNamedTwoWaysRunsOnePredictionAtATime) {
  ASSERT_TRUE(Load("mine", 1).ok());
  auto first = StartLong("mine");
  std::vector<std::unique_ptr<AsyncChat>> rest;
  for (const std::string& name : {std::string("mine"), std::string(kModel), std::string(kModel)}) {
    rest.push_back(std::make_unique<AsyncChat>(inference_.get(), Named(name)));
  }
  // Every call is accounted for: waiting in lmgate's queue, or sent to the host.
  auto queued = [&] {
    int n = 0;
    for (const auto& c : rest) n += c->queued() ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitUntil([&] { return queued() + Stat("predictions_active") >= 4; }))
      << queued() << " queued, " << Stat("predictions_active") << " at the host";
  EXPECT_EQ(Stat("predictions_active"), 1) << "predictions sent to the 1-slot instance at once";
  EXPECT_EQ(queued(), 3);

  // The rest run one after the other; sample the host while they do.
  SetTokens(200, 6);
  std::atomic<bool> running{true};
  std::atomic<int> peak{0};
  std::thread sampler([&] {
    while (running) {
      const int active = Stat("predictions_active");
      if (active > peak) peak = active;
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  first->Cancel();
  EXPECT_EQ(first->Wait().error_code(), grpc::StatusCode::CANCELLED);
  for (auto& c : rest) {
    grpc::Status st = c->Wait();
    EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  }
  running = false;
  sampler.join();
  EXPECT_LE(peak.load(), 1);
}

// Queued requests hold the instance's lease: a plain unload is refused naming them, a forced one
// fails every one of them UNAVAILABLE (retryable) and leaves no queue entry behind.
TEST_F(LeaseTest, UnloadOfAnInstanceWithQueuedRequestsFailsThemCleanly) {
  ASSERT_TRUE(Load("mine", 1).ok());
  auto first = StartLong("mine");
  std::vector<std::unique_ptr<AsyncChat>> queued;
  for (int i = 0; i < 2; ++i) {
    queued.push_back(std::make_unique<AsyncChat>(inference_.get(), Named("mine")));
  }
  ASSERT_TRUE(WaitUntil([&] { return queued[0]->queued() && queued[1]->queued(); }));

  grpc::Status plain = Unload("mine", /*force=*/false);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << plain.error_message();
  ASSERT_TRUE(Unload("mine", /*force=*/true).ok());
  grpc::Status running = first->Wait();
  EXPECT_EQ(running.error_code(), grpc::StatusCode::UNAVAILABLE) << running.error_message();
  for (auto& c : queued) {
    grpc::Status st = c->Wait();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_NE(st.error_message().find("force-unloaded"), std::string::npos) << st.error_message();
  }

  // A new `mine` gets a fresh queue: nothing of the old one holds its slot.
  SetTokens(0, 6);
  ASSERT_TRUE(Load("mine", 1).ok());
  for (int i = 0; i < 2; ++i) {
    testutil::ChatOutcome o = Chat(Named("mine"), testutil::Scaled(absl::Seconds(10)));
    EXPECT_TRUE(o.status.ok()) << o.status.error_code() << " " << o.status.error_message();
  }
}

// Every method takes the same path: Tokenize and CountTokens on the 1-slot instance wait in its
// queue behind a Chat that came first (by either name), are admitted in arrival order, and a
// cancelled one leaves no queue entry and never reaches the host.
TEST_F(LeaseTest, TokenizeAndCountTokensWaitTheirTurnBehindChatsOfTheSameInstance) {
  ASSERT_TRUE(Load("mine", 1).ok());
  auto first = StartLong("mine");
  AsyncChat chat(inference_.get(), Named(kModel));
  ASSERT_TRUE(WaitUntil([&] { return chat.queued(); }));
  auto tokenize = Tokenize("mine", /*count=*/false);
  ASSERT_TRUE(WaitUntil([&] { return Gauge("lmgate_queue_depth") == 2; }))
      << Gauge("lmgate_queue_depth") << " queued";
  auto count = Tokenize(kModel, /*count=*/true);
  ASSERT_TRUE(WaitUntil([&] { return Gauge("lmgate_queue_depth") == 3; }))
      << Gauge("lmgate_queue_depth") << " queued";
  EXPECT_FALSE(tokenize->done());
  EXPECT_EQ(Gauge("lmgate_in_flight"), 1);

  count->Cancel();
  EXPECT_EQ(count->Wait().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitUntil([&] { return Gauge("lmgate_queue_depth") == 2; }));

  emu_->ClearFrames();
  SetTokens(200, 6);
  first->Cancel();
  EXPECT_EQ(first->Wait().error_code(), grpc::StatusCode::CANCELLED);
  grpc::Status st = chat.Wait();
  EXPECT_TRUE(st.ok()) << st.error_message();
  st = tokenize->Wait();
  EXPECT_TRUE(st.ok()) << st.error_message();
  // Admitted in arrival order: the queued chat's prediction reached the host before the tokenize.
  const int predict = FrameIndex("channelCreate", "predict");
  const int tok = FrameIndex("rpcCall", "tokenize");
  ASSERT_GE(predict, 0);
  ASSERT_GE(tok, 0);
  EXPECT_LT(predict, tok);
  EXPECT_EQ(FrameIndex("rpcCall", "countTokens"), -1) << "the cancelled call reached the host";
  EXPECT_TRUE(WaitUntil([&] {
    return Gauge("lmgate_queue_depth") == 0 && Gauge("lmgate_in_flight") == 0;
  }));
}

// One x-lmgate-driver header per call: on the load path and on a model already loaded (which
// carried it twice), for Chat and Complete.
TEST_F(LeaseTest, OneDriverHeaderPerCall) {
  auto driver_headers = [](const grpc::ClientContext& ctx) {
    std::vector<std::string> values;
    auto range = ctx.GetServerInitialMetadata().equal_range("x-lmgate-driver");
    for (auto it = range.first; it != range.second; ++it) {
      values.emplace_back(it->second.data(), it->second.size());
    }
    return values;
  };
  for (int i = 0; i < 2; ++i) {  // the first loads the model, the second finds it loaded
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    auto reader = inference_->Chat(&ctx, ChatRequest(v1::DRIVER_AUTO));
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(driver_headers(ctx), std::vector<std::string>{"sdk_ws"}) << "chat " << i;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
  v1::CompleteRequest req;
  req.set_model(kModel);
  req.set_prompt("Once upon a time");
  req.mutable_sampling()->set_max_tokens(4);
  auto reader = inference_->Complete(&ctx, req);
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(driver_headers(ctx), std::vector<std::string>{"sdk_ws"}) << "complete";
}

}  // namespace
}  // namespace lmgate
