#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "services/admission/clock.h"
#include "services/admission/identity.h"
#include "services/admission/quota.h"

namespace lmgate::admission {
namespace {

TEST(IdentityTest, NoKeysMeansAnonymousWithEveryRole) {
  auto id = Identity::Create({});
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE((*id)->keys_enabled());
  auto t = (*id)->Authenticate("");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->admin);
}

TEST(IdentityTest, KeysFromHashEnvAndFile) {
  setenv("LMGATE_TEST_KEY", "env-key-0123456789abcdef", 1);
  IdentityOptions o;
  KeyConfig hashed;
  hashed.tenant.name = "team-a";
  hashed.tenant.models = {"qwen/*"};
  hashed.key_sha256 = Identity::Sha256Hex("hashed-key-0123456789");
  KeyConfig env;
  env.tenant.name = "ops";
  env.tenant.admin = true;
  env.key_env = "LMGATE_TEST_KEY";
  o.keys = {hashed, env};
  auto id = Identity::Create(o);
  ASSERT_TRUE(id.ok()) << id.status();
  auto a = (*id)->Authenticate("hashed-key-0123456789");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->name, "team-a");
  EXPECT_FALSE((*a)->admin);
  EXPECT_TRUE((*a)->AllowsModel("qwen/qwen3-4b"));
  EXPECT_FALSE((*a)->AllowsModel("google/gemma-3-1b"));
  EXPECT_EQ((*(*id)->Authenticate("env-key-0123456789abcdef"))->name, "ops");
  EXPECT_EQ((*id)->Authenticate("wrong").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*id)->Authenticate("").status().code(), absl::StatusCode::kUnauthenticated);

  KeyConfig bad;
  bad.tenant.name = "x";
  bad.key_env = "LMGATE_TEST_KEY_MISSING";
  o.keys = {bad};
  EXPECT_EQ(Identity::Create(o).status().code(), absl::StatusCode::kNotFound);
  bad.key_sha256 = "abc";  // two sources, and not a digest
  o.keys = {bad};
  EXPECT_EQ(Identity::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(IdentityTest, Allowlist) {
  IdentityOptions o;
  o.allow_cidrs = {"10.1.0.0/16", "::1", "127.0.0.1"};
  auto id = Identity::Create(o);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE((*id)->CheckPeer("ipv4:10.1.2.3:5555").ok());
  EXPECT_TRUE((*id)->CheckPeer("ipv4:127.0.0.1:1").ok());
  EXPECT_TRUE((*id)->CheckPeer("ipv6:[::1]:80").ok());
  EXPECT_TRUE((*id)->CheckPeer("ipv6:[::ffff:10.1.9.9]:80").ok());
  EXPECT_EQ((*id)->CheckPeer("ipv4:10.2.0.1:5").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*id)->CheckPeer("unix:/tmp/x").code(), absl::StatusCode::kPermissionDenied);
  o.allow_cidrs = {"10.0.0.0/99"};
  EXPECT_FALSE(Identity::Create(o).ok());
}

// gRPC writes IPv6 peers percent-encoded ("ipv6:%5B::1%5D:port"); IPv4 and IPv4-mapped IPv6 are
// one address whichever way the entry or the client writes it (issue 13 item 11).
TEST(IdentityTest, AllowlistBothFamiliesAsGrpcWritesThem) {
  IdentityOptions o;
  o.allow_cidrs = {"::1", "::ffff:192.168.1.0/120", "10.0.0.0/8", "fe80::/10"};
  auto id = Identity::Create(o);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE((*id)->CheckPeer("ipv6:%5B::1%5D:40123").ok());
  EXPECT_TRUE((*id)->CheckPeer("ipv4:192.168.1.77:5").ok());                 // mapped entry
  EXPECT_TRUE((*id)->CheckPeer("ipv6:%5B::ffff:10.9.8.7%5D:5").ok());        // mapped client
  EXPECT_TRUE((*id)->CheckPeer("ipv6:%5Bfe80::1%25eth0%5D:5").ok());         // zone
  EXPECT_EQ((*id)->CheckPeer("ipv4:192.168.2.1:5").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*id)->CheckPeer("ipv6:%5B::2%5D:5").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*id)->CheckPeer("ipv6:%5B2001:db8::1%5D:5").code(),
            absl::StatusCode::kPermissionDenied);
  o.allow_cidrs = {"::ffff:10.0.0.0/95"};  // wider than the mapped range: still an address
  EXPECT_TRUE(Identity::Create(o).ok());
  o.allow_cidrs = {"10.0.0.0/33"};
  EXPECT_FALSE(Identity::Create(o).ok());
}

// Issue 13 item 14: placeholders and weak keys are refused at start, saying how to make one.
TEST(IdentityTest, PlaceholderAndWeakKeysAreRefused) {
  for (const char* weak : {"replace-me-app-key", "CHANGE_ME_0123456789", "example-key-0123456789",
                           "your-api-key-here-123", "aaaaaaaaaaaaaaaaaaaa", "short-key"}) {
    setenv("LMGATE_TEST_WEAK_KEY", weak, 1);
    IdentityOptions o;
    KeyConfig k;
    k.tenant.name = "app";
    k.key_env = "LMGATE_TEST_WEAK_KEY";
    o.keys = {k};
    absl::Status st = Identity::Create(o).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << weak;
    EXPECT_NE(st.message().find("LMGATE_TEST_WEAK_KEY"), std::string::npos) << st;
    EXPECT_NE(st.message().find("openssl rand -hex 24"), std::string::npos) << st;
    EXPECT_EQ(st.message().find(weak), std::string::npos) << "the key is never printed: " << st;
  }
  EXPECT_EQ(Identity::KeyWeakness("3f9c0a7be21d4c58a6e0f1b2"), "");
}

TEST(QuotaTest, RequestsPerMinuteIsExactUnderConcurrency) {
  SimulatedClock clock;  // no refill while the threads run
  QuotaTracker q(&clock);
  Tenant t;
  t.name = "t";
  t.limits.requests_per_minute = 10;
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::unique_ptr<QuotaPermit>> held[8];
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 13; ++j) {  // 104 requests in all
        absl::Duration retry;
        auto p = q.Admit(t, &retry);
        if (p.ok()) {
          ++admitted;
          held[i].push_back(*std::move(p));
        } else {
          ++refused;
          EXPECT_GT(retry, absl::ZeroDuration());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(refused.load(), 94);
  // The bucket refills at 10/minute (one per 6 s): none after 5 s, one after 7 s.
  for (auto& h : held) h.clear();
  clock.Advance(absl::Seconds(5));
  EXPECT_FALSE(q.Admit(t).ok());
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(q.Admit(t).ok());
  EXPECT_FALSE(q.Admit(t).ok());
}

TEST(QuotaTest, ConcurrentStreamsAndTokens) {
  SimulatedClock clock;
  QuotaTracker q(&clock);
  Tenant t;
  t.name = "t";
  t.limits.concurrent_streams = 2;
  t.limits.tokens_per_minute = 100;
  auto a = q.Admit(t);
  auto b = q.Admit(t);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = q.Admit(t);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("concurrent"), std::string::npos);
  (*a)->Charge(150);  // over the minute's budget
  a->reset();
  auto d = q.Admit(t);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(d.status().message().find("tokens/minute"), std::string::npos) << d.status();
  // 50 tokens over: refilled at 100/minute, the bucket is positive again after 30 s.
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(q.Admit(t).ok());
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(q.Admit(t).ok());
}

// A reload (SIGHUP) swaps the identity: calls already authenticated keep their tenant (the
// pointer stays valid), new calls see the new keys, and quota state follows the tenant's name.
TEST(IdentityHolderTest, ReplaceKeepsOldTenantsAliveAndQuotaStateByName) {
  auto make = [](const std::string& key, int streams) {
    IdentityOptions o;
    KeyConfig k;
    k.tenant.name = "ops";
    k.tenant.limits.concurrent_streams = streams;
    k.key_sha256 = Identity::Sha256Hex(key);
    o.keys = {k};
    auto id = Identity::Create(o);
    EXPECT_TRUE(id.ok()) << id.status();
    return std::shared_ptr<const Identity>(*std::move(id));
  };
  IdentityHolder holder(make("old-key-0123456789", 1));
  auto old_tenant = holder.Get()->Authenticate("old-key-0123456789");
  ASSERT_TRUE(old_tenant.ok());
  QuotaTracker quotas;
  auto permit = quotas.Admit(**old_tenant);  // a stream running on the old key
  ASSERT_TRUE(permit.ok());

  holder.Replace(make("new-key-9876543210", 1));
  EXPECT_EQ(holder.Get()->Authenticate("old-key-0123456789").status().code(),
            absl::StatusCode::kUnauthenticated);
  auto new_tenant = holder.Get()->Authenticate("new-key-9876543210");
  ASSERT_TRUE(new_tenant.ok());
  EXPECT_EQ((*old_tenant)->name, "ops");  // still readable (ASan: not freed)
  // The running stream still counts against "ops" under the new identity.
  EXPECT_EQ(quotas.Admit(**new_tenant).status().code(), absl::StatusCode::kResourceExhausted);
  permit->reset();
  EXPECT_TRUE(quotas.Admit(**new_tenant).ok());

  IdentityHolder empty(nullptr);
  EXPECT_EQ(empty.Get(), nullptr);
}

}  // namespace
}  // namespace lmgate::admission
