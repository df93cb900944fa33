// The access log as an operator reads it: one line per RPC, for every method, with the authorised
// tenant, the peer, the caller's trace id and the call's figures. The lines are captured from
// spdlog's default logger (what lmgate writes to stdout), installed before the server starts.
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/admission/identity.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

// Keeps every formatted line; WaitFor blocks until one matches (no sleeps).
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // The first line for which `match` is true, within `timeout`; "" if none came.
  std::string WaitFor(const std::function<bool(const std::string&)>& match,
                      absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    std::string found;
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& l : lines_) {
        if (match(l)) {
          found = l;
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
    return found;
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string line(buf.data(), buf.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    absl::MutexLock lock(&mu_);
    lines_.push_back(std::move(line));
  }
  void flush_() override {}

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

CaptureSink* Sink() {
  static CaptureSink* sink = [] {
    auto s = std::make_shared<CaptureSink>();
    auto logger = std::make_shared<spdlog::logger>("lmgate", s);
    spdlog::set_default_logger(logger);
    return s.get();  // the default logger keeps it alive for the process
  }();
  return sink;
}

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class AccessLogTest : public testutil::GatewayFixture {
 protected:
  void SetUp() override {
    Sink();
    GatewayFixture::SetUp();
  }
  void Configure(emulator::Options&, backends::HostConfig&, services::ServerOptions& so) override {
    admission::IdentityOptions io;
    admission::KeyConfig ops;
    ops.tenant.name = "ops";
    ops.tenant.admin = true;
    ops.key_sha256 = admission::Identity::Sha256Hex("ops-key");
    admission::KeyConfig app;
    app.tenant.name = "app";
    app.key_sha256 = admission::Identity::Sha256Hex("app-key");
    io.keys = {ops, app};
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    so.identity = *std::move(identity);
  }

  // A context with a key, a request id and (optionally) a traceparent.
  static void Prepare(grpc::ClientContext* ctx, const std::string& key, const std::string& id,
                      bool trace = true) {
    ctx->AddMetadata("x-api-key", key);
    ctx->AddMetadata("x-request-id", id);
    if (trace) ctx->AddMetadata("traceparent", kTraceparent);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }

  // The access-log line of request `id`, parsed; null if none came.
  static nlohmann::json AccessLine(const std::string& id) {
    const std::string needle = "\"request_id\":\"" + id + "\"";
    std::string line = Sink()->WaitFor(
        [&](const std::string& l) { return l.find(needle) != std::string::npos; },
        testutil::Scaled(absl::Seconds(10)));
    if (line.empty()) return nullptr;
    auto j = nlohmann::json::parse(line.substr(line.find('{')), nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  }

  // The lifecycle-event line of `event` whose reason contains `reason`, parsed; null if none came.
  static nlohmann::json LifecycleLine(const std::string& event, const std::string& reason) {
    nlohmann::json found;
    Sink()->WaitFor(
        [&](const std::string& l) {
          auto brace = l.find('{');
          if (brace == std::string::npos) return false;
          auto j = nlohmann::json::parse(l.substr(brace), nullptr, false);
          if (!j.is_object() || j.value("event", "") != event ||
              j.value("reason", "").find(reason) == std::string::npos) {
            return false;
          }
          found = j;
          return true;
        },
        testutil::Scaled(absl::Seconds(10)));
    return found;
  }

  static int CountLines(const std::string& id) {
    int n = 0;
    for (const auto& l : Sink()->Lines()) {
      if (l.find("\"request_id\":\"" + id + "\"") != std::string::npos) ++n;
    }
    return n;
  }

  static void ExpectCommon(const nlohmann::json& j, const char* method, const char* tenant,
                           const char* code, bool traced = true) {
    ASSERT_TRUE(j.is_object()) << method << ": no access-log line";
    EXPECT_EQ(j.value("method", ""), method);
    EXPECT_EQ(j.value("tenant", ""), tenant) << method;
    EXPECT_EQ(j.value("code", ""), code) << method;
    EXPECT_EQ(j.value("trace_id", "?"), traced ? kTraceId : "") << method;
    EXPECT_NE(j.value("peer", "").find("127.0.0.1"), std::string::npos) << method << j.dump();
    EXPECT_TRUE(j.contains("ms")) << method;
  }
};

TEST_F(AccessLogTest, OneLinePerRpcForEveryMethod) {
  {  // LoadModel: the authorised tenant, the instance and the driver.
    grpc::ClientContext ctx;
    Prepare(&ctx, "ops-key", "load-1");
    v1::LoadModelRequest req;
    req.set_model(kModel);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    nlohmann::json j = AccessLine("load-1");
    ExpectCommon(j, "LoadModel", "ops", "OK");
    EXPECT_EQ(j.value("model", ""), kModel);
    EXPECT_FALSE(j.value("instance", "").empty()) << j.dump();
    // The lifecycle line of the load names the tenant that asked for it.
    nlohmann::json loaded = LifecycleLine("loaded", "for tenant ops");
    ASSERT_NE(loaded, nullptr);
    EXPECT_EQ(loaded.value("tenant", ""), "ops") << loaded.dump();
    EXPECT_FALSE(j.value("driver", "").empty()) << j.dump();
  }
  {  // Chat: tokens and durations.
    grpc::ClientContext ctx;
    Prepare(&ctx, "app-key", "chat-1");
    auto reader = inference_->Chat(&ctx, ChatRequest(v1::DRIVER_SDK));
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    nlohmann::json j = AccessLine("chat-1");
    ExpectCommon(j, "Chat", "app", "OK");
    EXPECT_GT(j.value("completion_tokens", 0), 0) << j.dump();
    EXPECT_TRUE(j.contains("queue_ms") && j.contains("load_ms") && j.contains("ttft_ms"))
        << j.dump();
  }
  {  // ListModels without a traceparent: trace_id is "".
    grpc::ClientContext ctx;
    Prepare(&ctx, "app-key", "list-1", /*trace=*/false);
    v1::ListModelsResponse resp;
    ASSERT_TRUE(models_->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
    ExpectCommon(AccessLine("list-1"), "ListModels", "app", "OK", /*traced=*/false);
  }
  {  // WatchModels: a line when the stream ends (here: the client cancels).
    grpc::ClientContext ctx;
    Prepare(&ctx, "app-key", "watch-1");
    v1::WatchModelsRequest req;
    req.set_include_snapshot(true);
    auto reader = models_->WatchModels(&ctx, req);
    v1::ModelEvent e;
    ASSERT_TRUE(reader->Read(&e));
    ctx.TryCancel();
    while (reader->Read(&e)) {
    }
    reader->Finish();
    ExpectCommon(AccessLine("watch-1"), "WatchModels", "app", "CANCELLED");
  }
  {  // UnloadModel: logged with the tenant that was authorised.
    grpc::ClientContext ctx;
    Prepare(&ctx, "ops-key", "unload-1");
    v1::UnloadModelRequest req;
    req.set_model(kModel);
    v1::UnloadModelResponse resp;
    grpc::Status st = models_->UnloadModel(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    nlohmann::json unloaded = AccessLine("unload-1");
    ExpectCommon(unloaded, "UnloadModel", "ops", "OK");
    // An AUTO unload names the driver that performed it (was "auto").
    EXPECT_EQ(unloaded.value("driver", ""), "sdk_ws") << unloaded.dump();
    // ... and so is the lifecycle event, with the tenant that asked.
    EXPECT_NE(LifecycleLine("unloaded", "UnloadModel by tenant ops"), nullptr);
  }
  {  // A denied LoadModel is logged too: no tenant was authorised.
    grpc::ClientContext ctx;
    Prepare(&ctx, "app-key", "load-denied");
    v1::LoadModelRequest req;
    req.set_model(kModel);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
    ExpectCommon(AccessLine("load-denied"), "LoadModel", "", "PERMISSION_DENIED");
  }
  for (const char* id : {"load-1", "chat-1", "list-1", "watch-1", "unload-1", "load-denied"}) {
    EXPECT_EQ(CountLines(id), 1) << id;
  }
}

// Lifecycle events are logged with their cause: an eviction names the model it made room for.
class EvictionLogTest : public AccessLogTest {
 protected:
  void Configure(emulator::Options& e, backends::HostConfig& h,
                 services::ServerOptions& so) override {
    AccessLogTest::Configure(e, h, so);
    so.gateway.lifecycle.max_loaded_models = 1;
  }
};

TEST_F(EvictionLogTest, EvictionNamesTheModelItMadeRoomFor) {
  for (const char* model : {kModel, "google/gemma-3-1b"}) {
    grpc::ClientContext ctx;
    Prepare(&ctx, "app-key", std::string("evict-") + model);
    v1::ChatRequest req = ChatRequest(v1::DRIVER_REST);
    req.set_model(model);
    auto reader = inference_->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << model << ": " << st.error_message();
  }
  nlohmann::json j = LifecycleLine("evicted", "to make room for google/gemma-3-1b");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j.value("model", ""), kModel);
  EXPECT_NE(LifecycleLine("loaded", ""), nullptr);
}

class TtlLogTest : public AccessLogTest {
 protected:
  void Configure(emulator::Options& e, backends::HostConfig& h,
                 services::ServerOptions& so) override {
    AccessLogTest::Configure(e, h, so);
    so.gateway.lifecycle.default_ttl = absl::Milliseconds(20);
  }
};

TEST_F(TtlLogTest, ExpiryIsLoggedWithItsCause) {
  grpc::ClientContext ctx;
  Prepare(&ctx, "app-key", "ttl-chat");
  auto reader = inference_->Chat(&ctx, ChatRequest(v1::DRIVER_REST));
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  nlohmann::json j = LifecycleLine("expired", "idle TTL expired");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j.value("model", ""), kModel);
}

}  // namespace
}  // namespace lmgate
