// services/cluster/redis against a real redis-server (tests/util/redis_server.h).
#include "services/cluster/redis.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/util/redis_server.h"
#include "tests/util/time_scale.h"

namespace lmgate::cluster {
namespace {

using testutil::RedisServer;

RedisUrl UrlOf(const RedisServer& s) {
  auto u = ParseRedisUrl(s.url());
  EXPECT_TRUE(u.ok()) << u.status();
  return *u;
}

TEST(RedisUrlTest, Parses) {
  auto u = ParseRedisUrl("redis://:s3cret@10.1.2.3:6380/2");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "10.1.2.3");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->db, 2);
  EXPECT_EQ(u->Redacted().find("s3cret"), std::string::npos) << u->Redacted();

  u = ParseRedisUrl("redis://gw:pw@redis");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "redis");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->user, "gw");
  EXPECT_EQ(u->password, "pw");

  u = ParseRedisUrl("redis://[::1]:7000");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
}

TEST(RedisUrlTest, RefusesWhatItCannotUse) {
  for (const char* bad : {"http://redis:6379", "redis://", "redis://host:0", "redis://host:99999",
                          "redis://host:abc", "redis://host/-1", "redis://host/x", "redis://[::1"}) {
    auto u = ParseRedisUrl(bad);
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(u.status().message().find("cluster.redis_url"), std::string::npos) << u.status();
  }
  auto tls = ParseRedisUrl("rediss://redis:6380");
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tls.status().message().find("TLS"), std::string::npos) << tls.status();
}

// A URL refused for its scheme or its port may still hold a password: the error names what is
// wrong, with the credentials replaced by "***".
TEST(RedisUrlTest, ErrorsNeverEchoThePassword) {
  for (const char* bad : {"http://admin:hunter2-s3cret@redis:6379", "https://:hunter2-s3cret@redis",
                          "hunter2-s3cret@redis:6379", "redis://:hunter2-s3cret@redis:notaport",
                          "redis://u:hunter2-s3cret@redis/x", "tcp://:hunter2-s3cret@[::1"}) {
    auto u = ParseRedisUrl(bad);
    ASSERT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    const std::string msg(u.status().message());
    EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cluster.redis_url"), std::string::npos) << msg;
  }
  auto u = ParseRedisUrl("http://admin:hunter2-s3cret@redis:6379");
  EXPECT_NE(u.status().message().find("\"http://***@redis:6379\""), std::string::npos)
      << u.status();
  u = ParseRedisUrl("http://redis:6379");  // nothing to hide: shown as given
  EXPECT_NE(u.status().message().find("\"http://redis:6379\""), std::string::npos) << u.status();
}

TEST(RedisUrlTest, PasswordFromTheEnvironment) {
  setenv("LMGATE_TEST_REDIS_PW", "from-env", 1);
  auto u = ParseRedisUrl("redis://:in-url@host", "LMGATE_TEST_REDIS_PW");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->password, "from-env");
  unsetenv("LMGATE_TEST_REDIS_PW");
  u = ParseRedisUrl("redis://host", "LMGATE_TEST_REDIS_PW");
  EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(u.status().message().find("LMGATE_TEST_REDIS_PW"), std::string::npos) << u.status();
}

TEST(RedisClientTest, CommandsAndReplies) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisClient c(UrlOf(**server));
  ASSERT_TRUE(c.Ping().ok());
  auto set = c.Command({"SET", "k", std::string("a\0b", 3)});  // binary-safe
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  auto get = c.Command({"GET", "k"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->str, std::string("a\0b", 3));
  EXPECT_TRUE(c.Command({"GET", "missing"})->is_nil());
  EXPECT_EQ(c.Command({"INCRBY", "n", "5"})->integer, 5);
  ASSERT_TRUE(c.Command({"RPUSH", "l", "x", "y"}).ok());
  auto range = c.Command({"LRANGE", "l", "0", "-1"});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->elements.size(), 2u);
  EXPECT_EQ(range->elements[1].str, "y");
  // An error reply is the server's message, not a dead connection.
  auto wrong = c.Command({"INCR", "k"});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("not an integer"), std::string::npos) << wrong.status();
  EXPECT_TRUE(c.Ping().ok());
  EXPECT_EQ(c.Command({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisClientTest, NoServerIsUnavailable) {
  int port;
  {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    port = (*server)->port();
  }  // stopped: nothing listens there now
  RedisUrl u;
  u.port = port;
  RedisClient c(u);
  auto r = c.Command({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot connect to redis"), std::string::npos) << r.status();
}

TEST(RedisClientTest, AuthAndSelect) {
  auto server = RedisServer::Start({"--requirepass", "pw1"});
  ASSERT_TRUE(server.ok()) << server.status();
  RedisUrl u = UrlOf(**server);
  RedisClient none(u);
  EXPECT_EQ(none.Command({"SET", "a", "1"}).status().code(), absl::StatusCode::kFailedPrecondition);

  u.password = "wrong";
  RedisClient wrong(u);
  auto r = wrong.Ping();
  EXPECT_EQ(r.code(), absl::StatusCode::kPermissionDenied) << r;
  EXPECT_EQ(r.message().find("wrong"), std::string::npos) << "the password leaked: " << r;

  u.password = "pw1";
  u.db = 3;
  RedisClient good(u);
  ASSERT_TRUE(good.Command({"SET", "a", "in-db-3"}).ok());
  u.db = 0;
  RedisClient db0(u);
  EXPECT_TRUE(db0.Command({"GET", "a"})->is_nil());
}

TEST(RedisClientTest, ReconnectsAfterARestart) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisClient c(UrlOf(**server));
  ASSERT_TRUE(c.Command({"SET", "a", "1"}).ok());
  ASSERT_TRUE((*server)->Restart().ok());
  // The old connection is gone; the client notices on the first call and sends it again on a
  // new connection (the restarted Redis never saw it), so no call fails — it answers from a
  // Redis that lost its data. (Issue 14: each gateway's first quota check after a Redis restart
  // failed, refusing a request with on_redis_error=closed.)
  auto first = c.Command({"GET", "a"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->is_nil());
}

TEST(RedisClientTest, UnresponsiveServerTimesOut) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisOptions o;
  o.command_timeout = absl::Milliseconds(200);
  RedisClient c(UrlOf(**server), o);
  ASSERT_TRUE(c.Ping().ok());
  (*server)->Pause();
  const absl::Time start = absl::Now();
  auto r = c.Command({"PING"});
  const absl::Duration took = absl::Now() - start;
  (*server)->Resume();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("no answer within"), std::string::npos) << r.status();
  EXPECT_LT(took, testutil::Scaled(absl::Seconds(5)));
  // The late PONG must not be taken for the next command's answer: the connection was dropped.
  auto after = c.Command({"ECHO", "fresh"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->str, "fresh");
}

TEST(RedisScriptTest, RunsAndSurvivesAFlush) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisClient c(UrlOf(**server));
  // Compare-and-increment: the shape of the atomic steps the cluster state needs.
  RedisScript script(
      "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
      "if v >= tonumber(ARGV[1]) then return -1 end\n"
      "return redis.call('INCR', KEYS[1])\n");
  EXPECT_EQ(script.sha1().size(), 40u);
  EXPECT_EQ(script.Run(c, {"n"}, {"2"})->integer, 1);  // NOSCRIPT on first use, then loaded
  EXPECT_EQ(script.Run(c, {"n"}, {"2"})->integer, 2);
  EXPECT_EQ(script.Run(c, {"n"}, {"2"})->integer, -1);
  ASSERT_TRUE(c.Command({"SCRIPT", "FLUSH"}).ok());
  EXPECT_EQ(script.Run(c, {"m"}, {"2"})->integer, 1);
  RedisScript broken("return redis.call('NOPE')");
  auto r = broken.Run(c, {}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

// Collects what a subscriber delivers; waits on a condition, never a sleep.
class Inbox {
 public:
  void Message(const std::string& channel, const std::string& payload) {
    absl::MutexLock lock(&mu_);
    messages_.push_back(channel + "=" + payload);
  }
  void State(bool subscribed) {
    absl::MutexLock lock(&mu_);
    states_.push_back(subscribed);
  }
  bool WaitMessages(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return messages_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  // Waits until the subscriber has reported `subscribed` `n` times.
  bool WaitSubscribed(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return std::count(states_.begin(), states_.end(), true) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  std::vector<std::string> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  std::vector<bool> states() {
    absl::MutexLock lock(&mu_);
    return states_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> messages_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> states_ ABSL_GUARDED_BY(mu_);
};

TEST(RedisSubscriberTest, DeliversAndResubscribesAfterARestart) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  Inbox inbox;
  RedisClient pub(UrlOf(**server));
  {
    RedisSubscriber sub(
        UrlOf(**server), {"events", "flights"},
        [&](const std::string& c, const std::string& p) { inbox.Message(c, p); },
        [&](bool s) { inbox.State(s); });
    ASSERT_TRUE(inbox.WaitSubscribed(1, testutil::Scaled(absl::Seconds(10))));
    const absl::Time sent = absl::Now();
    ASSERT_EQ(pub.Command({"PUBLISH", "events", "loaded"})->integer, 1);
    ASSERT_TRUE(inbox.WaitMessages(1, testutil::Scaled(absl::Seconds(5))));
    const absl::Duration latency = absl::Now() - sent;
    EXPECT_LT(latency, testutil::Scaled(absl::Milliseconds(100))) << "issue 14's bound for events";
    ASSERT_TRUE(pub.Command({"PUBLISH", "flights", std::string("a\0b", 3)}).ok());
    ASSERT_TRUE(pub.Command({"PUBLISH", "other", "x"}).ok());  // not subscribed
    ASSERT_TRUE(inbox.WaitMessages(2, testutil::Scaled(absl::Seconds(5))));

    ASSERT_TRUE((*server)->Restart().ok());
    ASSERT_TRUE(inbox.WaitSubscribed(2, testutil::Scaled(absl::Seconds(10))))
        << "not subscribed again after the restart";
    auto n = pub.Command({"PUBLISH", "events", "after-restart"});
    if (!n.ok()) n = pub.Command({"PUBLISH", "events", "after-restart"});  // the old connection
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(n->integer, 1);
    ASSERT_TRUE(inbox.WaitMessages(3, testutil::Scaled(absl::Seconds(5))));
  }  // the destructor stops the thread
  EXPECT_EQ(inbox.messages(),
            (std::vector<std::string>{"events=loaded", std::string("flights=a\0b", 11),
                                      "events=after-restart"}));
  const std::vector<bool> states = inbox.states();
  ASSERT_GE(states.size(), 3u);
  EXPECT_TRUE(states[0]);
  EXPECT_FALSE(states[1]) << "the lost link was not reported";
  EXPECT_TRUE(states.back());
}

TEST(RedisSubscriberTest, StopsPromptlyWhileRedisIsDown) {
  int port;
  {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    port = (*server)->port();
  }
  RedisUrl u;
  u.port = port;
  Inbox inbox;
  const absl::Time start = absl::Now();
  {
    RedisSubscriber sub(
        u, {"events"}, [&](const std::string& c, const std::string& p) { inbox.Message(c, p); },
        [&](bool s) { inbox.State(s); });
  }
  EXPECT_LT(absl::Now() - start, testutil::Scaled(absl::Seconds(3)));
  EXPECT_TRUE(inbox.messages().empty());
}

}  // namespace
}  // namespace lmgate::cluster
