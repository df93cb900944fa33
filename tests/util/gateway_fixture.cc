#include "tests/util/gateway_fixture.h"

#include <vector>

#include "absl/time/clock.h"
#include "backends/builtin.h"
#include "backends/registry.h"
#include "backends/selector.h"
#include "tests/util/time_scale.h"

namespace lmgate::testutil {

void GatewayFixture::SetUp() {
  emulator::Options eo;
  eo.settings.ttft_ms = 1;
  eo.settings.tokens_per_second = 0;
  backends::HostConfig host;
  services::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.gateway.default_model = kModel;
  so.gateway.default_embedding_model = "text-embedding-nomic-embed-text-v1.5";
  so.gateway.lifecycle.refresh_interval = absl::ZeroDuration();
  so.worker_threads = 8;
  Configure(eo, host, so);

  auto emu = emulator::Emulator::Create(eo);
  ASSERT_TRUE(emu.ok()) << emu.status();
  emu_ = *std::move(emu);
  backends::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterBuiltinBackends(registry).ok());
  host.base_url = emu_->http_url();
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  for (const char* name : {"sdk_ws", "rest", "openai"}) {
    auto d = registry.Create(name, host);
    ASSERT_TRUE(d.ok()) << d.status();
    drivers.push_back(*std::move(d));
  }
  so.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
  auto server = services::LmgateServer::Create(std::move(so));
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                 grpc::InsecureChannelCredentials());
  inference_ = v1::Inference::NewStub(channel_);
  models_ = v1::ModelManager::NewStub(channel_);
}

void GatewayFixture::TearDown() {
  if (server_) server_->Shutdown(absl::Seconds(2));
  if (emu_) emu_->Shutdown();
}

v1::ChatRequest GatewayFixture::ChatRequest(v1::Driver driver, std::optional<int> max_tokens) {
  v1::ChatRequest req;
  req.set_model(kModel);
  req.set_driver(driver);
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("Tell me about gateways.");
  req.mutable_sampling()->set_seed(7);
  if (max_tokens) req.mutable_sampling()->set_max_tokens(*max_tokens);
  return req;
}

ChatOutcome GatewayFixture::Chat(const v1::ChatRequest& req, absl::Duration deadline,
                                const std::function<void()>& on_first_delta) {
  ChatOutcome out;
  const absl::Time start = absl::Now();
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(start + deadline));
  auto reader = inference_->Chat(&ctx, req);
  v1::ChatResponse r;
  bool first = true;
  while (reader->Read(&r)) {
    if (r.has_content_delta()) {
      out.joined += r.content_delta();
      if (first && on_first_delta) on_first_delta();
      first = false;
    }
    if (r.has_result()) {
      out.result = r.result();
      out.got_result = true;
    }
  }
  out.status = reader->Finish();
  out.took = absl::Now() - start;
  return out;
}

bool GatewayFixture::Quiescent(absl::Duration timeout) {
  const absl::Time until = absl::Now() + testutil::Scaled(timeout);
  while (Stat("predictions_active") != 0) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

void GatewayFixture::ExpectEveryDriverServes(absl::Duration within) {
  for (v1::Driver d : kDrivers) {
    const absl::Time until = absl::Now() + testutil::Scaled(within);
    ChatOutcome o;
    do {
      o = Chat(ChatRequest(d), testutil::Scaled(absl::Seconds(5)));
      if (o.status.ok()) break;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < until);
    EXPECT_TRUE(o.status.ok()) << v1::Driver_Name(d) << " did not recover: "
                               << o.status.error_code() << " " << o.status.error_message();
    EXPECT_TRUE(o.got_result) << v1::Driver_Name(d);
    EXPECT_EQ(o.joined, o.result.content()) << v1::Driver_Name(d);
  }
}

void GatewayFixture::SetTokens(double tokens_per_second, int response_tokens) {
  emulator::Settings s = emu_->settings();
  s.tokens_per_second = tokens_per_second;
  s.min_response_tokens = s.max_response_tokens = response_tokens;
  emu_->SetSettings(s);
}

::testing::AssertionResult IsClearFailure(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::OK:
      return ::testing::AssertionFailure() << "OK (expected a failure)";
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
      return ::testing::AssertionFailure()
             << "unclear code " << st.error_code() << ": " << st.error_message();
    default:
      if (st.error_message().empty()) {
        return ::testing::AssertionFailure() << "code " << st.error_code() << " without a message";
      }
      return ::testing::AssertionSuccess();
  }
}

}  // namespace lmgate::testutil
