// Fault injection through the HTTP control endpoint (as out-of-process tests use it) and the C++ API.
#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::HttpResult;
using testing::ParseSse;
using testing::WaitFor;

std::unique_ptr<Emulator> Start() {
  Options o;
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;
  o.settings.load_ms_per_gb = 4;
  auto e = Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

json Chat(const std::string& model, bool stream = false) {
  return {{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"stream", stream}};
}

TEST(Faults, ControlEndpointShapesAndValidation) {
  auto e = Start();
  HttpClient c(e->port());
  json faults = c.Get("/__emulator/faults").json();
  for (const char* k : {"drop_after_fragments", "http_error_count", "http_error_status",
                        "stall_after_fragments", "stall_ms", "load_time_multiplier", "jit_window_ms",
                        "jit_window_status", "fail_next_loads"}) {
    EXPECT_TRUE(faults.contains(k)) << k;
  }
  EXPECT_EQ(c.Post("/__emulator/faults", {{"no_such_fault", 1}}).status, 400);
  EXPECT_EQ(c.Post("/__emulator/faults", {{"http_error_status", 99}}).status, 400);
  json set = c.Post("/__emulator/faults", {{"stall", {{"after_fragments", 2}, {"ms", 5}}}}).json();
  EXPECT_EQ(set["stall_after_fragments"], 2);
  EXPECT_EQ(c.Post("/__emulator/faults", {{"clear", true}}).json()["stall_after_fragments"], -1);
  json settings = c.Post("/__emulator/settings", {{"jit_enabled", false}}).json();
  EXPECT_EQ(settings["jit_enabled"], false);
  EXPECT_FALSE(e->settings().jit_enabled);
  EXPECT_EQ(c.Post("/__emulator/settings", {{"bogus", 1}}).status, 400);
  c.Get("/lmstudio-greeting");
  EXPECT_EQ(c.Get("/__emulator/stats").json()["requests_by_interface"]["cli_status"], 1);
  EXPECT_EQ(c.Post("/__emulator/reset", json::object()).json()["requests_by_interface"]["cli_status"], 0);
}

TEST(Faults, HttpErrorsForTheNextRequests) {
  auto e = Start();
  HttpClient c(e->port());
  ASSERT_EQ(c.Post("/__emulator/faults", {{"http_error", {{"count", 2}, {"status", 503}}}}).status, 200);
  EXPECT_EQ(c.Get("/lmstudio-greeting").status, 200);  // probes are not affected
  HttpResult first = c.Post("/v1/chat/completions", Chat("google/gemma-3-1b"));
  EXPECT_EQ(first.status, 503);
  EXPECT_TRUE(first.json()["error"]["message"].is_string());
  EXPECT_EQ(c.Get("/api/v1/models").status, 503);
  EXPECT_EQ(c.Get("/api/v1/models").status, 200);
  EXPECT_EQ(e->Stats()["http_errors_injected"], 2);
  EXPECT_EQ(e->Stats()["predictions_started"], 0);
}

TEST(Faults, StallPausesTheStream) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  e->StallNextPrediction(2, 150);
  HttpClient c(e->port());
  std::vector<absl::Time> arrivals;
  c.PostStream("/v1/chat/completions", Chat("google/gemma-3-1b", true), [&](const std::string& d) {
    for (size_t pos = d.find("data: "); pos != std::string::npos; pos = d.find("data: ", pos + 1)) {
      arrivals.push_back(absl::Now());
    }
    return true;
  });
  ASSERT_GE(arrivals.size(), 4u);
  EXPECT_GE(arrivals[2] - arrivals[1], absl::Milliseconds(140));
  EXPECT_EQ(e->Stats()["predictions_finished"], 1);
}

TEST(Faults, StallForeverUntilCancelledOverWebSocket) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  e->StallNextPrediction(0, -1);
  auto ws = testing::WsClient::Connect(e->port(), "llm");
  ASSERT_TRUE(ws.ok());
  ASSERT_EQ((*ws)->Auth()["success"], true);
  json param = {{"modelSpecifier", {{"type", "query"}, {"query", json::object()}}},
                {"history", {{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "x"}}}}}}}}},
                {"predictionConfigStack", {{"layers", json::array()}}}};
  (*ws)->Send({{"type", "channelCreate"}, {"endpoint", "predict"}, {"channelId", 7}, {"creationParameter", param}});
  ASSERT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 1; }));
  (*ws)->Send({{"type", "channelSend"}, {"channelId", 7}, {"message", {{"type", "cancel"}}}});
  std::string last_message;
  while (auto f = (*ws)->Next()) {
    if ((*f)["type"] == "channelSend") last_message = (*f)["message"]["type"];
    if ((*f)["type"] == "channelClose") break;
  }
  EXPECT_EQ(last_message, "success");
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);
  EXPECT_EQ(e->Stats()["predictions_active"], 0);
}

TEST(Faults, DropAfterFragmentsOverSse) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  HttpClient c(e->port());
  ASSERT_EQ(c.Post("/__emulator/faults", {{"drop_after_fragments", 3}}).status, 200);
  HttpResult r = c.Post("/v1/chat/completions", Chat("google/gemma-3-1b", true));
  std::vector<json> events = ParseSse(r.body);
  EXPECT_EQ(events.size(), 3u);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);
  EXPECT_EQ(c.Post("/v1/chat/completions", Chat("google/gemma-3-1b")).status, 200);  // one-shot
}

TEST(Faults, JitWindowFailsRequestsNamingTheModel) {
  auto e = Start();
  HttpClient c(e->port());
  e->SetJitWindow(300, 404);
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  HttpResult r = c.Post("/v1/chat/completions", Chat("google/gemma-3-1b"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["code"], "model_not_found");
  EXPECT_EQ(c.Post("/v1/chat/completions", Chat("qwen/qwen3-4b")).status, 200);  // other models fine
  EXPECT_TRUE(WaitFor([&] {
    return c.Post("/v1/chat/completions", Chat("google/gemma-3-1b")).status == 200;
  }));
}

TEST(Faults, RefuseConnectionsThenRecover) {
  auto e = Start();
  const int port = e->port();
  {
    HttpClient c(port);
    ASSERT_EQ(c.Post("/__emulator/faults", {{"refuse_connections_ms", 300}}).status, 200);
  }
  auto fresh_probe = [port] { return HttpClient(port).Get("/lmstudio-greeting").status; };
  EXPECT_TRUE(WaitFor([&] { return fresh_probe() < 0; }, absl::Seconds(2)));  // refused
  EXPECT_TRUE(WaitFor([&] { return fresh_probe() == 200; }));
  EXPECT_EQ(e->port(), port);
}

TEST(Faults, SlowAndFailingLoads) {
  auto e = Start();
  HttpClient c(e->port());
  ASSERT_EQ(c.Post("/__emulator/faults", {{"load_time_multiplier", 20}}).status, 200);
  json load = c.Post("/api/v1/models/load", {{"model", "qwen/qwen3-4b"}}).json();
  EXPECT_GE(load["load_time_seconds"].get<double>(), 0.18);  // 2.5 GB * 4 ms/GB * 20
  e->SetLoadTimeMultiplier(1);
  e->FailNextLoads(1);
  HttpResult failed = c.Post("/api/v1/models/load", {{"model", "google/gemma-3-1b"}});
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.json()["error"]["type"], "internal_error");
  EXPECT_EQ(c.Post("/v1/chat/completions", Chat("google/gemma-3-1b")).status, 200);
  json stats = e->Stats();
  EXPECT_EQ(stats["loads_failed"], 1);
  EXPECT_EQ(stats["loads_finished"], 2);
}

}  // namespace
}  // namespace lmgate::emulator
