// Consumers that do not read (issue 13, items 7 and 8): WatchModels subscribers that never pull,
// a Chat client that never reads, and /metrics clients that connect and stall. None of them may
// grow lmgate's memory without bound, keep the host generating, or block other clients.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/reliability/fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate::reliability {
namespace {

using testutil::Scaled;

constexpr size_t kMaxPendingBytes = 64 << 10;
constexpr absl::Duration kWriteStall = absl::Seconds(1);
constexpr absl::Duration kMetricsTimeout = absl::Seconds(1);

// Resident set of this process (lmgate runs in it), in MB.
double RssMb() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * sysconf(_SC_PAGESIZE) / (1 << 20);
}

// A loopback TCP connection to `port`; `rcvbuf` > 0 shrinks its receive buffer.
int Connect(int port, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  // A guard against a hang, not a synchronisation: reads below wait for the server's answer.
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(Scaled(absl::Seconds(20)))), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads until the server closes.
std::string Exchange(int fd, const std::string& request) {
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  return out;
}

constexpr char kScrape[] = "GET /metrics HTTP/1.1\r\nHost: lmgate\r\nConnection: close\r\n\r\n";

class ConsumersTest : public LmgateFixture {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig& host,
                 services::ServerOptions& server) override {
    LmgateFixture::Configure(emulator, host, server);
    server.stream_limits = Limits();
    server.metrics_listen = "127.0.0.1:0";
    server.metrics_max_connections = 16;
    server.metrics_timeout = Scaled(kMetricsTimeout);
  }

  // The write-stall bound alone; PendingBytesTest has the byte bound alone.
  virtual services::StreamLimits Limits() {
    services::StreamLimits limits;
    limits.write_stall = kWriteStall;
    return limits;
  }

  // A channel whose streams get no more than HTTP/2's initial 64 KiB window unless the client
  // reads (no BDP probing to grow it).
  std::shared_ptr<grpc::Channel> NonReadingChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     grpc::InsecureChannelCredentials(), args);
  }

  bool WaitForActive(int n, absl::Duration timeout) {
    const absl::Time until = absl::Now() + Scaled(timeout);
    while (Stat("predictions_active") < n) {
      if (absl::Now() > until) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }

  // A chat on a client that never reads: the host must stop generating within the bound, and the
  // stream ends with RESOURCE_EXHAUSTED naming `limit` once the client reads again.
  void ExpectNonReaderGivenUp(const std::string& limit) {
    auto stub = v1::Inference::NewStub(NonReadingChannel());
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + Scaled(absl::Seconds(60))));
    auto reader = stub->Chat(&ctx, ChatRequest(v1::DRIVER_SDK, std::nullopt));
    ASSERT_TRUE(WaitForActive(1, absl::Seconds(10)));
    const absl::Time started = absl::Now();
    EXPECT_TRUE(Quiescent(absl::Seconds(10))) << "the host kept generating for nobody";
    std::printf("%s: prediction cancelled %.2f s after it started\n", limit.c_str(),
                absl::ToDoubleSeconds(absl::Now() - started));
    v1::ChatResponse r;
    bool got_result = false;
    while (reader->Read(&r)) got_result |= r.has_result();
    const grpc::Status st = reader->Finish();
    EXPECT_FALSE(got_result);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find(limit), std::string::npos) << st.error_message();
    EXPECT_NE(st.error_message().find("did not read"), std::string::npos) << st.error_message();
  }
};

class PendingBytesTest : public ConsumersTest {
 protected:
  services::StreamLimits Limits() override {
    services::StreamLimits limits;
    limits.max_pending_bytes = kMaxPendingBytes;
    return limits;
  }
};

TEST_F(PendingBytesTest, ChatClientThatNeverReadsHitsThePendingBytesBound) {
  ExpectEveryDriverServes();
  SetTokens(/*tokens_per_second=*/0, /*response_tokens=*/2000000);  // as fast as it can
  ExpectNonReaderGivenUp("limits.stream_max_pending_bytes");
}

TEST_F(ConsumersTest, ChatClientThatStopsReadingHitsTheWriteStallBound) {
  ExpectEveryDriverServes();
  SetTokens(/*tokens_per_second=*/2000, /*response_tokens=*/2000000);
  ExpectNonReaderGivenUp("limits.stream_write_stall_seconds");
}

TEST_F(ConsumersTest, WatchersThatNeverReadStayBoundedAndCountTheirDrops) {
  ExpectEveryDriverServes();  // model loaded
  constexpr int kWatchers = 20;
  auto channel = NonReadingChannel();
  auto stub = v1::ModelManager::NewStub(channel);
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ModelEvent>>> watchers;
  v1::WatchModelsRequest watch;
  watch.set_include_snapshot(true);  // the snapshot's first message proves the subscription
  for (int i = 0; i < kWatchers; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    ctxs.back()->set_deadline(absl::ToChronoTime(absl::Now() + Scaled(absl::Seconds(120))));
    watchers.push_back(stub->WatchModels(ctxs.back().get(), watch));
    watchers.back()->WaitForInitialMetadata();
  }
  const double rss_before = RssMb();
  // The storm: loads with thousands of progress events each.
  emulator::Settings s = emu_->settings();
  s.load_progress_steps = 4000;
  emu_->SetSettings(s);
  for (int i = 0; i < 6; ++i) {
    grpc::ClientContext uctx;
    uctx.set_deadline(absl::ToChronoTime(absl::Now() + Scaled(absl::Seconds(20))));
    v1::UnloadModelRequest unload;
    unload.set_model(kModel);
    unload.set_all_instances(true);
    unload.set_force(true);
    v1::UnloadModelResponse unloaded;
    ASSERT_TRUE(models_->UnloadModel(&uctx, unload, &unloaded).ok());
    grpc::ClientContext lctx;
    lctx.set_deadline(absl::ToChronoTime(absl::Now() + Scaled(absl::Seconds(30))));
    v1::LoadModelRequest load;
    load.set_model(kModel);
    auto progress = models_->LoadModel(&lctx, load);
    v1::LoadModelResponse r;
    while (progress->Read(&r)) {
    }
    ASSERT_TRUE(progress->Finish().ok());
  }
  const double rss_after = RssMb();
  std::printf("%d watchers that do not read, 6 loads x 4000 progress events: RSS %.1f -> %.1f MB\n",
              kWatchers, rss_before, rss_after);
  // Per watcher: the bus's 1024 queued events and one stalled write; unbounded, the storm's ~24k
  // events per watcher cost ~100 MB.
  if (!testutil::kAddressSanitizer) {
    EXPECT_LT(rss_after - rss_before, 30) << "watchers that do not read grow lmgate's memory";
  }
  // One watcher resumes: it gets what was in flight, then an event saying how many were dropped.
  uint64_t dropped = 0;
  v1::ModelEvent e;
  for (int n = 0; n < 20000 && dropped == 0 && watchers[0]->Read(&e); ++n) {
    dropped = e.events_dropped();
  }
  EXPECT_GT(dropped, 0u) << "the resumed watcher was not told about dropped events";
  std::printf("resumed watcher: events_dropped=%llu\n", static_cast<unsigned long long>(dropped));
  for (auto& c : ctxs) c->TryCancel();
  for (auto& w : watchers) {
    while (w->Read(&e)) {
    }
    w->Finish();
  }
}

TEST_F(ConsumersTest, MetricsServesWhileClientsStallAndClosesIdleConnections) {
  const int port = server_->metrics_port();
  ASSERT_NE(port, 0);
  // One client asks and never reads (a tiny receive buffer), ten connect and say nothing.
  int non_reader = Connect(port, /*rcvbuf=*/1024);
  ASSERT_GE(non_reader, 0);
  (void)!write(non_reader, kScrape, sizeof(kScrape) - 1);
  std::vector<int> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(Connect(port));
  const absl::Time t0 = absl::Now();
  int scrape = Connect(port);
  const std::string body = Exchange(scrape, kScrape);
  const absl::Duration took = absl::Now() - t0;
  close(scrape);
  std::printf("scrape with 1 non-reader + 10 idle connections: %.1f ms\n",
              absl::ToDoubleMilliseconds(took));
  EXPECT_NE(body.find(" 200 OK\r\n"), std::string::npos) << body.substr(0, 200);
  EXPECT_NE(body.find("lmgate_"), std::string::npos);
  EXPECT_LT(took, Scaled(absl::Seconds(1)));
  // The idle connections are closed once the timeout passes (read returns 0: EOF).
  char c;
  for (int fd : idle) {
    EXPECT_EQ(read(fd, &c, 1), 0) << "an idle connection was not closed";
  }
  EXPECT_LT(absl::Now() - t0, Scaled(kMetricsTimeout) + Scaled(absl::Seconds(3)));
  for (int fd : idle) close(fd);
  close(non_reader);
  // A request header beyond the cap gets 400, not memory.
  int big = Connect(port);
  const std::string huge =
      absl::StrCat("GET /metrics HTTP/1.1\r\nX-Junk: ", std::string(64 << 10, 'a'), "\r\n\r\n");
  const std::string answer = Exchange(big, huge);
  close(big);
  EXPECT_NE(answer.find(" 400 "), std::string::npos) << answer.substr(0, 200);
}

}  // namespace
}  // namespace lmgate::reliability
