// The shared quota check never runs inside a gRPC reaction (issue 14 follow-up): lmgate in-process
// over the emulator with cluster.redis_url on a real redis-server, which the tests freeze
// (SIGSTOP) while quota checks are in flight.
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/admission/identity.h"
#include "services/cluster/redis.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

constexpr char kLimitedKey[] = "limited-key-9f3b2c7d1e";
constexpr char kFreeKey[] = "unlimited-key-4a8e6d2b";

// Bytes the (frozen) redis-server has received but not read, over its connections on `port`:
// > 0 once a command is in flight to it. Read from /proc/net/tcp (local address of the server
// side of each established connection).
int64_t UnreadByRedis(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int64_t total = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 5 || f[3] != "01") continue;  // ESTABLISHED
    std::vector<std::string> local = absl::StrSplit(f[1], ':');
    std::vector<std::string> queues = absl::StrSplit(f[4], ':');
    if (local.size() != 2 || queues.size() != 2) continue;
    if (std::stoi(local[1], nullptr, 16) != port) continue;
    total += std::stoll(queues[1], nullptr, 16);  // rx_queue
  }
  return total;
}

template <typename Pred>
bool WaitFor(Pred pred, absl::Duration within) {
  const absl::Time deadline = absl::Now() + testutil::Scaled(within);
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));  // polling a condition, not timing
  }
  return pred();
}

class AsyncAdmitTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options& emu, backends::HostConfig& host,
                 services::ServerOptions& server) override {
    auto redis = testutil::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    server.cluster.redis_url = redis_->url();
    server.cluster.command_timeout = command_timeout_;
    admission::IdentityOptions io;
    admission::KeyConfig limited;
    limited.tenant.name = "limited";
    limited.tenant.limits.concurrent_streams = 1;
    limited.key_sha256 = admission::Identity::Sha256Hex(kLimitedKey);
    admission::KeyConfig free;
    free.tenant.name = "free";
    free.key_sha256 = admission::Identity::Sha256Hex(kFreeKey);
    io.keys = {limited, free};
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    server.identity = *std::move(identity);
  }

  void TearDown() override {
    if (redis_) redis_->Resume();
    GatewayFixture::TearDown();
  }

  grpc::Status ChatAs(const char* key, absl::Duration deadline, grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext own;
    if (ctx == nullptr) ctx = &own;
    ctx->AddMetadata("x-api-key", key);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(deadline)));
    auto reader = inference_->Chat(ctx, ChatRequest(v1::DRIVER_REST, 4));
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  // Stream permits of the limited tenant held in Redis.
  int64_t PermitsInRedis() {
    auto url = cluster::ParseRedisUrl(redis_->url());
    EXPECT_TRUE(url.ok());
    cluster::RedisClient client(*url);
    auto keys = client.Command({"KEYS", "lmgate:*:streams:limited"});
    if (!keys.ok() || keys->elements.empty()) return 0;
    auto n = client.Command({"ZCARD", keys->elements[0].str});
    return n.ok() ? n->integer : -1;
  }

  absl::Duration command_timeout_ = testutil::Scaled(absl::Seconds(2));
  std::unique_ptr<testutil::RedisServer> redis_;
};

TEST_F(AsyncAdmitTest, PausedRedisDoesNotStallAnotherTenantsChat) {
  // Warm: the model is loaded and the gateway's Redis connection is up.
  ASSERT_TRUE(ChatAs(kFreeKey, absl::Seconds(30)).ok());
  ASSERT_TRUE(ChatAs(kLimitedKey, absl::Seconds(30)).ok());

  redis_->Pause();
  // Limited calls whose quota checks now wait for Redis, one command timeout each (the client
  // serialises them): a reaction doing that blocks one gRPC callback thread for seconds.
  constexpr int kLimited = 8;
  std::vector<std::thread> limited;
  for (int i = 0; i < kLimited; ++i) {
    // Open mode: each ends admitted once Redis is given up, or refused by the limit of 1.
    limited.emplace_back([&] { ChatAs(kLimitedKey, absl::Seconds(60)); });
  }
  ASSERT_TRUE(WaitFor([&] { return UnreadByRedis(redis_->port()) > 0; }, absl::Seconds(10)))
      << "no quota check reached the paused Redis";

  const absl::Time start = absl::Now();
  grpc::Status free = ChatAs(kFreeKey, absl::Seconds(60));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(free.ok()) << free.error_message();
  // Well under one command timeout: the unlimited tenant waits for no Redis call (it waited a
  // whole command timeout, 2.04 s, when the check ran in the reaction).
  EXPECT_LT(took, command_timeout_ / 2) << "the unlimited Chat took " << took;

  redis_->Resume();
  for (auto& t : limited) t.join();
}

TEST_F(AsyncAdmitTest, CallCancelledWhileItsQuotaCheckIsInFlightLeavesNoPermit) {
  ASSERT_TRUE(ChatAs(kLimitedKey, absl::Seconds(30)).ok());
  ASSERT_EQ(PermitsInRedis(), 0);

  redis_->Pause();
  grpc::ClientContext ctx;
  grpc::Status cancelled;
  std::thread call([&] { cancelled = ChatAs(kLimitedKey, absl::Seconds(60), &ctx); });
  ASSERT_TRUE(WaitFor([&] { return UnreadByRedis(redis_->port()) > 0; }, absl::Seconds(10)))
      << "the quota check did not reach the paused Redis";
  ctx.TryCancel();
  call.join();
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::CANCELLED) << cancelled.error_message();
  // The check in flight now succeeds (well within the command timeout) and takes a permit in
  // Redis; the gateway must hand it back at once, not leave it until it lapses (3 heartbeats).
  redis_->Resume();
  EXPECT_TRUE(WaitFor([&] { return UnreadByRedis(redis_->port()) == 0; }, absl::Seconds(5)));
  EXPECT_TRUE(WaitFor([&] { return PermitsInRedis() == 0; }, absl::Seconds(5)))
      << PermitsInRedis() << " permit(s) left in Redis";
  // concurrent_streams = 1: the next call of the tenant is admitted.
  grpc::Status next = ChatAs(kLimitedKey, absl::Seconds(30));
  EXPECT_TRUE(next.ok()) << next.error_message();
  EXPECT_EQ(PermitsInRedis(), 0);
}

}  // namespace
}  // namespace lmgate
