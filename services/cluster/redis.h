// A blocking Redis client for the state several lmgates on one host share (issue 14: leases,
// single-flight loads, quotas, queues). Built on Debian's hiredis 0.14.
//
// - RedisUrl: `redis://[[user]:password@]host[:port][/db]`; the password may instead come from an
//   environment variable (the config names it). `rediss://` is refused: hiredis 0.14 has no TLS.
// - RedisClient: one connection, serialised by a mutex (callers keep their commands short).
//   Every call is bounded by `command_timeout`; an I/O error or timeout closes the connection and
//   the next call reconnects (AUTH and SELECT again), so a restarted Redis is picked up without
//   a restart of lmgate. A kept connection found closed by the server (a restart) is replaced
//   and the command sent once more on the new one, so no call fails for it. Errors are statuses a caller can act on: UNAVAILABLE (cannot connect,
//   timed out, connection lost — retryable), PERMISSION_DENIED (AUTH refused), INVALID_ARGUMENT
//   (a bad URL), and the server's own error replies as FAILED_PRECONDITION with its text.
// - RedisScript: a Lua script run with EVALSHA; after NOSCRIPT (a restarted or flushed Redis) it
//   is loaded again and re-run once, so atomic multi-key steps survive a Redis restart.
//
// Thread-safe.
#ifndef LMGATE_SERVICES_CLUSTER_REDIS_H_
#define LMGATE_SERVICES_CLUSTER_REDIS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;

namespace lmgate::cluster {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // Redis 6 ACL user; empty = the default user
  std::string password;  // empty = no AUTH
  int db = 0;
  // host:port/db without the password, for logs and error messages.
  std::string Redacted() const;
};

// Parses `url`. `password_env`, when not empty, names an environment variable holding the
// password (it wins over one in the URL; an unset or empty variable is an error). Errors never
// echo a password: a URL they quote has its credentials replaced by "***".
absl::StatusOr<RedisUrl> ParseRedisUrl(const std::string& url, const std::string& password_env = "");

// A reply: what hiredis returns, copied out (so it outlives the connection's buffers).
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kString, kStatus
  std::vector<RedisReply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
};

struct RedisOptions {
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration command_timeout = absl::Seconds(1);
};

class RedisClient {
 public:
  RedisClient(RedisUrl url, RedisOptions options = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command, e.g. {"SET", key, value, "PX", "3000"}. An error reply is
  // FAILED_PRECONDITION with the server's message; see the header comment for the others.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& argv);

  // Connects now if not connected (Command does it on demand); for a start-up check.
  absl::Status Ping();

  const RedisUrl& url() const { return url_; }

 private:
  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `*timed_out`: the failure was the command timeout (not a closed connection).
  absl::StatusOr<RedisReply> RunLocked(const std::vector<std::string>& argv, bool* timed_out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RedisUrl url_;
  const RedisOptions options_;
  absl::Mutex mu_;
  redisContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Receives Redis pub/sub messages on its own connection and thread (how gateways hear each
// other's lifecycle events, load progress and results). Reconnects and subscribes again after a
// lost connection or a Redis restart, with a backoff (100 ms doubling to 2 s); messages published
// while it was disconnected are lost, so `on_state(false)` ... `on_state(true)` tells the owner to
// re-read what it must not miss. Publish with RedisClient: {"PUBLISH", channel, payload}.
class RedisSubscriber {
 public:
  using MessageFn = std::function<void(const std::string& channel, const std::string& payload)>;
  // true once every channel is subscribed (after each (re)connect); false when the link is lost.
  using StateFn = std::function<void(bool subscribed)>;

  // Callbacks run on the subscriber's thread, one at a time; they must not block for long.
  RedisSubscriber(RedisUrl url, std::vector<std::string> channels, MessageFn on_message,
                  StateFn on_state = nullptr, RedisOptions options = {});
  ~RedisSubscriber();  // stops the thread; no callback runs after it returns
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

 private:
  void Loop();
  // Subscribes on a fresh connection and delivers messages until an error or Stop.
  absl::Status Session();
  // Sleeps `d` unless stopped first; false when stopped.
  bool Pause(absl::Duration d);

  const RedisUrl url_;
  const std::vector<std::string> channels_;
  const MessageFn on_message_;
  const StateFn on_state_;
  const RedisOptions options_;
  int stop_fd_ = -1;  // eventfd: written once by the destructor
  std::thread thread_;
};

// Lua prelude of the cluster scripts: sets `now` (ms) from ARGV[1], or from Redis's own clock when
// ARGV[1] is "" (production: gateways with skewed clocks agree; tests pass a simulated time).
inline constexpr char kLuaNowPrelude[] = R"lua(
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// ARGV[1] for a script starting with kLuaNowPrelude: `now` in ms, or "" for Redis's clock.
std::string LuaNowArg(std::optional<absl::Time> now);

class RedisScript;
// The renewal step shared by leases and stream permits: KEYS[1] is a sorted set of members scored
// by their expiry (ms); ARGV: now (kLuaNowPrelude), ttl ms, members... Drops lapsed members,
// extends the given ones that still exist (a lapsed one is not revived) to now + ttl, keeps the
// key for ttl + 1 s, and returns how many were renewed.
const RedisScript& RenewMembersScript();

// A Lua script, run atomically by Redis with EVALSHA (loaded again after NOSCRIPT).
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  absl::StatusOr<RedisReply> Run(RedisClient& client, const std::vector<std::string>& keys,
                                 const std::vector<std::string>& args) const;
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;  // lower-case hex, as SCRIPT LOAD answers
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_REDIS_H_
