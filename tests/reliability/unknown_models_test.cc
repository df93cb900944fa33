// Caller-chosen model names (issue 13 items 5, 6, 12): a flood of distinct names the host does
// not have gets NOT_FOUND with a clear message and leaves no state behind — /metrics stays the
// same size, per-model health answers an unknown name like a known model that is not loaded —
// and 500 of them at once cost the host one listing, no thread and no file descriptor each.
#include <dirent.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "services/admission/identity.h"
#include "tests/reliability/fixture.h"
#include "tests/util/skewed_clock.h"
#include "tests/util/time_scale.h"

namespace lmgate::reliability {
namespace {

using grpc::health::v1::HealthCheckResponse;

int CountDir(const char* path) {
  DIR* d = opendir(path);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
int Threads() { return CountDir("/proc/self/task"); }
int Fds() { return CountDir("/proc/self/fd"); }

// Every request the emulator saw, over all its interfaces.
int HostRequests(const nlohmann::json& stats) {
  int n = 0;
  for (const auto& [k, v] : stats["requests_by_interface"].items()) n += v.get<int>();
  return n;
}

class UnknownModelsTest : public LmgateFixture {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig& host,
                 services::ServerOptions& server) override {
    LmgateFixture::Configure(emulator, host, server);
    // The tests count host requests: no readiness listing in between (the health loop re-reads
    // the host every interval).
    server.health_interval = absl::Hours(1);
    // The registry's clock for the listing's age: a test makes the listing stale by moving it.
    server.gateway.lifecycle.clock = &clock_;
  }

  v1::ChatRequest ChatFor(const std::string& model) {
    v1::ChatRequest req = ChatRequest(v1::DRIVER_AUTO);
    req.set_model(model);
    return req;
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(10))));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status st = stub->Check(&ctx, req, &resp);
    return st.ok() ? resp.status() : HealthCheckResponse::SERVICE_UNKNOWN;
  }

  // The server (its registry reads clock_) is destroyed here, before clock_ is: the base
  // fixture's members outlive this class's.
  void TearDown() override {
    LmgateFixture::TearDown();
    server_.reset();
  }

  testutil::SkewedClock clock_;
};

TEST_F(UnknownModelsTest, ThousandsOfDistinctNamesLeaveMetricsAndHealthAsTheyWere) {
  constexpr int kWarmup = 200;
  constexpr int kCalls = 3000;
  constexpr int kClients = 4;
  auto run = [&](int from, int to) {
    std::vector<std::thread> clients;
    std::atomic<int> bad{0};
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int i = from + c; i < to; i += kClients) {
          const std::string name = absl::StrCat("nosuch/model-", i, "-", i * 7919 % 10007);
          ChatOutcome o = Chat(ChatFor(name), testutil::Scaled(absl::Seconds(10)));
          const bool clear = o.status.error_code() == grpc::StatusCode::NOT_FOUND &&
                             o.status.error_message().find(absl::StrCat(
                                 "model \"", name, "\" is not downloaded")) != std::string::npos;
          if (!clear && bad.fetch_add(1) < 3) {
            ADD_FAILURE() << name << ": " << o.status.error_code() << " "
                          << o.status.error_message();
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    return bad.load();
  };
  ASSERT_EQ(run(0, kWarmup), 0);
  const size_t metrics_before = server_->metrics().Render().size();
  ASSERT_EQ(run(kWarmup, kWarmup + kCalls), 0);
  const std::string metrics_after = server_->metrics().Render();
  // Counter values grow by a digit or two; no series is added per name.
  EXPECT_LT(metrics_after.size(), metrics_before + 1024)
      << "/metrics grew from " << metrics_before << " to " << metrics_after.size() << " bytes";
  EXPECT_EQ(metrics_after.find("nosuch/"), std::string::npos);
  EXPECT_NE(metrics_after.find("model=\"other\""), std::string::npos);
  std::cerr << "/metrics after " << kWarmup << " and " << kWarmup + kCalls
            << " unknown names: " << metrics_before << " -> " << metrics_after.size()
            << " bytes\n";

  // Health: a name that was asked for, one never asked for and a known model that is not
  // loaded all answer NOT_SERVING; a loaded model answers SERVING.
  EXPECT_EQ(Health("lmgate.model/nosuch/model-7-55433"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health("lmgate.model/never/asked"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(absl::StrCat("lmgate.model/", kModel)), HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(Chat(ChatFor(kModel), testutil::Scaled(absl::Seconds(30))).status.ok());
  EXPECT_EQ(Health(absl::StrCat("lmgate.model/", kModel)), HealthCheckResponse::SERVING);
}

TEST_F(UnknownModelsTest, FiveHundredNamesAtOnceShareOneListingAndNoThreads) {
  constexpr int kNames = 500;
  // Warm the client channel and the drivers' connections, then make the listing stale so that
  // the burst has to ask the host.
  ChatOutcome warm = Chat(ChatFor("nosuch/warm-up"), testutil::Scaled(absl::Seconds(10)));
  ASSERT_EQ(warm.status.error_code(), grpc::StatusCode::NOT_FOUND) << warm.status.error_message();
  clock_.set_skew(absl::Seconds(3600));
  const int threads_before = Threads();
  const int fds_before = Fds();
  const int host_before = HostRequests(emu_->Stats());

  // All at once from one client thread (async), so the process's thread count is lmgate's.
  struct Call {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientAsyncReader<v1::ChatResponse>> reader;
    v1::ChatResponse resp;
    grpc::Status status;
    int stage = 0;  // 0 started, 1 reading, 2 finished
    std::string name;
  };
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kNames; ++i) {
    auto c = std::make_unique<Call>();
    c->name = absl::StrCat("nosuch/burst-", i);
    c->ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(30))));
    c->reader = inference_->PrepareAsyncChat(&c->ctx, ChatFor(c->name), &cq);
    c->reader->StartCall(c.get());
    calls.push_back(std::move(c));
  }
  int finished = 0;
  int peak_threads = Threads();
  void* tag;
  bool ok;
  while (finished < kNames && cq.Next(&tag, &ok)) {
    auto* c = static_cast<Call*>(tag);
    peak_threads = std::max(peak_threads, Threads());
    if (c->stage == 2) {
      ++finished;
      continue;
    }
    if (ok && c->stage <= 1) {
      c->stage = 1;
      c->reader->Read(&c->resp, c);
    } else {
      c->stage = 2;
      c->reader->Finish(&c->status, c);
    }
  }
  ASSERT_EQ(finished, kNames);
  int not_found = 0;
  for (const auto& c : calls) {
    if (c->status.error_code() == grpc::StatusCode::NOT_FOUND &&
        c->status.error_message().find(c->name) != std::string::npos) {
      ++not_found;
    } else if (not_found + 3 > kNames) {
      ADD_FAILURE() << c->name << ": " << c->status.error_code() << " "
                    << c->status.error_message();
    }
  }
  EXPECT_EQ(not_found, kNames);
  const int host_requests = HostRequests(emu_->Stats()) - host_before;
  const int threads_after = Threads();
  const int fds_after = Fds();
  std::cerr << kNames << " unknown names at once: " << host_requests << " host requests; threads "
            << threads_before << " -> peak " << peak_threads << " -> " << threads_after
            << "; fds " << fds_before << " -> " << fds_after << "\n";
  // One listing of the host for the whole burst (a driver may spend two requests on it).
  EXPECT_LE(host_requests, 3);
  // gRPC may add a poller or two under load; nothing per name.
  EXPECT_LE(peak_threads - threads_before, 16);
  EXPECT_LE(threads_after - threads_before, 4);
  EXPECT_LE(fds_after - fds_before, 8);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  // That listing is fresh: GetModel of more unknown names is answered from it.
  const int host_mid = HostRequests(emu_->Stats());
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(10))));
    v1::GetModelRequest req;
    req.set_model(absl::StrCat("nosuch/get-", i));
    v1::Model resp;
    grpc::Status st = models_->GetModel(&ctx, req, &resp);
    ASSERT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  }
  EXPECT_EQ(HostRequests(emu_->Stats()) - host_mid, 0);
}

// The tenant label comes from the configured keys, never from what a caller sends: random keys
// are all one unauthenticated label (tenant=""), and add no series.
class UnknownTenantsTest : public UnknownModelsTest {
 protected:
  static constexpr char kKey[] = "reliability-key-0123456789";
  void Configure(emulator::Options& emulator, backends::HostConfig& host,
                 services::ServerOptions& server) override {
    UnknownModelsTest::Configure(emulator, host, server);
    admission::IdentityOptions io;
    admission::KeyConfig k;
    k.tenant.name = "team-a";
    k.key_sha256 = admission::Identity::Sha256Hex(kKey);
    io.keys.push_back(k);
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    server.identity = std::shared_ptr<const admission::Identity>(std::move(*identity));
  }
  grpc::Status ChatWithKey(const std::string& key, const std::string& model) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(10))));
    ctx.AddMetadata("authorization", "Bearer " + key);
    auto reader = inference_->Chat(&ctx, ChatFor(model));
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }
};

TEST_F(UnknownTenantsTest, RandomKeysAndModelsAddNoSeries) {
  auto round = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = absl::StrCat("random-key-", i, "-abcdefghijkl");
      EXPECT_EQ(ChatWithKey(key, "nosuch/m").error_code(), grpc::StatusCode::UNAUTHENTICATED);
      EXPECT_EQ(ChatWithKey(kKey, absl::StrCat("nosuch/m-", i)).error_code(),
                grpc::StatusCode::NOT_FOUND);
    }
  };
  round(0, 50);
  const size_t before = server_->metrics().Render().size();
  round(50, 550);
  const std::string after = server_->metrics().Render();
  EXPECT_LT(after.size(), before + 512) << before << " -> " << after.size();
  EXPECT_EQ(after.find("random-key"), std::string::npos);
  EXPECT_NE(after.find("tenant=\"team-a\""), std::string::npos);
}

}  // namespace
}  // namespace lmgate::reliability
