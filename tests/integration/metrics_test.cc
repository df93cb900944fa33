// /metrics after a mixed load (chat, embed, load, unload, a cancelled call, an upstream error):
// `promtool check metrics` accepts the scrape, and the series lmgate adds (loaded instances, host
// reachability, build info, process_*) are there with sane values. Needs Debian's `prometheus`
// package (promtool; deploy/setup.sh installs it).
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/http/client.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

// Sample lines of a text exposition: "name{labels}" -> value.
using Samples = std::map<std::string, double>;

Samples Parse(const std::string& text) {
  Samples out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space == absl::string_view::npos) continue;
    if (!absl::SimpleAtod(line.substr(space + 1), &v)) {
      if (line.substr(space + 1) == "+Inf") v = HUGE_VAL;
    }
    out[std::string(line.substr(0, space))] = v;
  }
  return out;
}

// Series of `name` whose label text contains every one of `parts`.
Samples Matching(const Samples& all, const std::string& name,
                 std::initializer_list<absl::string_view> parts = {}) {
  Samples out;
  for (const auto& [series, v] : all) {
    if (series != name && !absl::StartsWith(series, name + "{")) continue;
    bool ok = true;
    for (absl::string_view p : parts) ok = ok && absl::StrContains(series, p);
    if (ok) out[series] = v;
  }
  return out;
}

// `promtool check metrics` on `text`: its exit status and output (lint problems included).
std::pair<int, std::string> Promtool(const std::string& text) {
  const std::string path = absl::StrCat(testing::TempDir(), "/scrape.txt");
  std::ofstream(path) << text;
  FILE* p = popen(absl::StrCat("promtool check metrics < '", path, "' 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

class MetricsTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&,
                 services::ServerOptions& server) override {
    server.metrics_listen = "127.0.0.1:0";
    server.health_interval = absl::Milliseconds(50);  // the loop that retries a host that is down
  }

  // GET /metrics over HTTP (what Prometheus sees).
  std::string Scrape() {
    backends::http::HttpClient::Options o;
    o.base_url = absl::StrCat("http://127.0.0.1:", server_->metrics_port());
    auto client = backends::http::HttpClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return "";
    backends::CallContext ctx;
    ctx.deadline = absl::Now() + absl::Seconds(10);
    backends::http::HttpRequest req;
    req.path = "/metrics";
    auto resp = (*client)->Do(ctx, req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->body : "";
  }

  void Load() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::LoadModelRequest req;
    req.set_model(kModel);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
  }

  void Unload() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::UnloadModelRequest req;
    req.set_model(kModel);
    v1::UnloadModelResponse r;
    grpc::Status st = models_->UnloadModel(&ctx, req, &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  // A chat (auto driver) cancelled by the client after its first delta.
  void CancelledChat() {
    SetTokens(/*tokens_per_second=*/50, /*response_tokens=*/400);
    v1::ChatRequest req = ChatRequest(v1::DRIVER_AUTO, std::nullopt);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto reader = inference_->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r) && !r.has_content_delta()) {
    }
    ctx.TryCancel();
    while (reader->Read(&r)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    ASSERT_TRUE(Quiescent());
    SetTokens(0, 12);
  }
};

TEST_F(MetricsTest, PromtoolAcceptsAScrapeAfterAMixedLoad) {
  Load();
  ASSERT_TRUE(Chat(ChatRequest(v1::DRIVER_SDK), absl::Seconds(20)).status.ok());
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::EmbedRequest req;
    req.add_inputs("hello world");
    req.set_driver(v1::DRIVER_REST);
    v1::EmbedResponse resp;
    grpc::Status st = inference_->Embed(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  const Samples loaded = Parse(Scrape());
  const Samples instance =
      Matching(loaded, "lmgate_model_loaded", {absl::StrCat("model=\"", kModel, "\",instance=\"")});
  ASSERT_EQ(instance.size(), 1u) << "no lmgate_model_loaded series for " << kModel;
  EXPECT_EQ(instance.begin()->second, 1);

  CancelledChat();
  // An upstream error: the WebSocket drops mid-stream (UNAVAILABLE through sdk_ws).
  emu_->DropAfterFragments(2);
  EXPECT_EQ(Chat(ChatRequest(v1::DRIVER_SDK), absl::Seconds(20)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  Unload();

  const std::string text = Scrape();
  const auto [rc, out] = Promtool(text);
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << out << "\non:\n" << text;
  const Samples s = Parse(text);
  std::cerr << "scrape: " << text.size() << " bytes, " << s.size() << " samples; promtool exit "
            << rc << (out.empty() ? "" : ": ") << out << "\n";

  // New series.
  EXPECT_TRUE(Matching(s, "lmgate_model_loaded", {absl::StrCat("model=\"", kModel, "\"")}).empty())
      << "the unloaded instance is still reported";
  EXPECT_EQ(Matching(s, "lmgate_build_info", {"version=\"", "commit=\""}).size(), 1u);
  for (const auto& [k, v] : Matching(s, "lmgate_build_info")) EXPECT_EQ(v, 1) << k;
  EXPECT_EQ(s.count("lmgate_host_up") ? s.at("lmgate_host_up") : -1, 1);
  auto get = [&](const char* name) { return s.count(name) ? s.at(name) : -1; };
  EXPECT_GT(get("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(get("process_virtual_memory_bytes"), get("process_resident_memory_bytes"));
  EXPECT_GT(get("process_open_fds"), 3);
  EXPECT_GE(get("process_max_fds"), get("process_open_fds"));
  EXPECT_GE(get("process_cpu_seconds_total"), 0);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_GT(get("process_start_time_seconds"), now - 3600);
  EXPECT_LE(get("process_start_time_seconds"), now + 1);

  // Fix: the cancelled call keeps the driver it was routed to (was driver="").
  const Samples cancelled = Matching(s, "lmgate_requests_total", {"code=\"CANCELLED\""});
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_FALSE(absl::StrContains(cancelled.begin()->first, "driver=\"\""))
      << cancelled.begin()->first;
  EXPECT_FALSE(absl::StrContains(cancelled.begin()->first, "driver=\"auto\""))
      << cancelled.begin()->first;
  // Fix: upstream errors carry the driver their help text promises.
  EXPECT_EQ(Matching(s, "lmgate_upstream_errors_total",
                     {"driver=\"sdk_ws\"", "code=\"UNAVAILABLE\""}),
            (Samples{{"lmgate_upstream_errors_total{driver=\"sdk_ws\",code=\"UNAVAILABLE\"}", 1}}));
  // Fix: load progress ticks are not events; one load, one "loaded".
  EXPECT_TRUE(Matching(s, "lmgate_model_events_total", {"kind=\"load_progress\""}).empty());
  EXPECT_EQ(Matching(s, "lmgate_model_events_total", {"kind=\"loaded\""}).size(), 1u);
  // Fix: load histograms reach the 10-minute load timeout (they stopped at 120 s).
  EXPECT_FALSE(Matching(s, "lmgate_model_load_seconds_bucket", {"le=\"600\""}).empty());
  // Queue gauges keep their model label.
  for (const auto& [k, v] : Matching(s, "lmgate_in_flight")) {
    EXPECT_TRUE(absl::StrContains(k, "model=\"")) << k;
  }
}

// lmgate_host_up follows the host: 0 once a listing fails, 1 again when the health loop's retry
// succeeds.
TEST_F(MetricsTest, HostUpFollowsTheHost) {
  auto host_up = [&] {
    const Samples s = Parse(Scrape());
    return s.count("lmgate_host_up") ? s.at("lmgate_host_up") : -1;
  };
  // Polls the gauge (a scrape has no notification) until it reads `want`.
  auto wait_for = [&](double want) {
    const absl::Time until = absl::Now() + testutil::Scaled(absl::Seconds(10));
    while (host_up() != want) {
      if (absl::Now() > until) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  };
  ASSERT_TRUE(wait_for(1));
  emu_->RefuseConnections(absl::ToInt64Milliseconds(testutil::Scaled(absl::Seconds(2))),
                          /*drop_existing_connections=*/true);
  // The health loop's listing may have been in flight as the host went away (a refresh joins
  // it and shares its answer): the next one fails.
  bool listing_failed = false;
  for (int i = 0; i < 2 && !listing_failed; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListModelsRequest req;
    req.set_refresh(true);  // AUTO: a named driver's listing leaves lmgate's view (and host_up) alone
    v1::ListModelsResponse resp;
    listing_failed = !models_->ListModels(&ctx, req, &resp).ok();
  }
  EXPECT_TRUE(listing_failed);
  EXPECT_TRUE(wait_for(0)) << "lmgate_host_up stayed 1 after a failed listing";
  EXPECT_TRUE(wait_for(1)) << "lmgate_host_up did not come back once the host listened again";
}

}  // namespace
}  // namespace lmgate
