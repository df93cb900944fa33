#include "services/cluster/redis.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace lmgate::cluster {
namespace {

timeval TimeoutOf(absl::Duration d) {
  if (d < absl::Milliseconds(1)) d = absl::Milliseconds(1);
  return absl::ToTimeval(d);
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// Copies a hiredis reply; an error reply (at any depth) becomes FAILED_PRECONDITION.
absl::StatusOr<RedisReply> Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::kNil;
      return out;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      return out;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      return out;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      return out;
    case REDIS_REPLY_ERROR:
      return absl::FailedPreconditionError(
          absl::StrCat("redis answered: ", absl::string_view(r->str, r->len)));
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        auto e = Convert(r->element[i]);
        if (!e.ok()) return e.status();
        out.elements.push_back(*std::move(e));
      }
      return out;
    default:
      return absl::InternalError(absl::StrCat("redis: unknown reply type ", r->type));
  }
}

std::string Sha1Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace

std::string RedisUrl::Redacted() const {
  return absl::StrCat(host, ":", port, "/", db, password.empty() ? "" : " (with a password)");
}

namespace {

// `url` for an error message: whatever precedes the last '@' after the scheme (the credentials,
// as ParseRedisUrl reads them) becomes "***".
std::string WithoutCredentials(absl::string_view url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == absl::string_view::npos ? 0 : scheme + 3;
  const size_t at = url.rfind('@');
  if (at == absl::string_view::npos || at < start) return std::string(url);
  return absl::StrCat(url.substr(0, start), "***", url.substr(at));
}

}  // namespace

absl::StatusOr<RedisUrl> ParseRedisUrl(const std::string& url, const std::string& password_env) {
  absl::string_view rest(url);
  if (absl::StartsWith(rest, "rediss://")) {
    return absl::InvalidArgumentError(
        "cluster.redis_url: rediss:// (TLS) is not supported by this build's hiredis 0.14; use "
        "redis:// over a trusted network or a TLS tunnel (e.g. stunnel) to Redis");
  }
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster.redis_url must look like redis://[:password@]host[:port][/db], got \"",
        WithoutCredentials(url), "\""));
  }
  RedisUrl out;
  const size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view cred = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    const size_t colon = cred.find(':');
    if (colon == absl::string_view::npos) {
      out.password = std::string(cred);  // redis://secret@host (no user)
    } else {
      out.user = std::string(cred.substr(0, colon));
      out.password = std::string(cred.substr(colon + 1));
    }
  }
  absl::string_view hostport = rest;
  const size_t slash = rest.find('/');
  if (slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    absl::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!absl::SimpleAtoi(db, &out.db) || out.db < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster.redis_url: the database after '/' must be a number >= 0, got \"",
                       db, "\""));
    }
  }
  absl::string_view host = hostport;
  if (absl::StartsWith(hostport, "[")) {  // [::1]:6379
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("cluster.redis_url: unclosed '[' in the host");
    }
    host = hostport.substr(1, close - 1);
    hostport.remove_prefix(close + 1);
    if (!hostport.empty() && !absl::ConsumePrefix(&hostport, ":")) {
      return absl::InvalidArgumentError("cluster.redis_url: expected ':port' after ']'");
    }
  } else {
    const size_t colon = hostport.rfind(':');
    host = colon == absl::string_view::npos ? hostport : hostport.substr(0, colon);
    hostport = colon == absl::string_view::npos ? absl::string_view() : hostport.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError("cluster.redis_url: the host is empty");
  out.host = std::string(host);
  if (!hostport.empty() &&
      (!absl::SimpleAtoi(hostport, &out.port) || out.port < 1 || out.port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster.redis_url: the port must be 1-65535, got \"", hostport, "\""));
  }
  if (!password_env.empty()) {
    const char* v = std::getenv(password_env.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::InvalidArgumentError(absl::StrCat(
          "cluster.redis_password_env names ", password_env, ", which is unset or empty"));
    }
    out.password = v;
  }
  return out;
}

RedisClient::RedisClient(RedisUrl url, RedisOptions options)
    : url_(std::move(url)), options_(options) {}

RedisClient::~RedisClient() {
  absl::MutexLock lock(&mu_);
  CloseLocked();
}

void RedisClient::CloseLocked() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

namespace {

// Runs one command on `c`; on an I/O error or timeout `*broken` is set (hiredis leaves the context
// unusable then: the caller drops it and reconnects later).
absl::StatusOr<RedisReply> RunOn(redisContext* c, const RedisUrl& url, const RedisOptions& options,
                                 const std::vector<std::string>& argv, bool* broken,
                                 bool* timed_out_out = nullptr) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data())));
  if (reply == nullptr) {
    const bool timed_out = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    const std::string why = c->errstr[0] != '\0' ? c->errstr : "connection lost";
    *broken = true;
    if (timed_out_out != nullptr) *timed_out_out = timed_out;
    return absl::UnavailableError(absl::StrCat(
        "redis at ", url.Redacted(), ": ",
        timed_out ? absl::StrCat("no answer within ", absl::FormatDuration(options.command_timeout))
                  : why));
  }
  return Convert(reply.get());
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

// Connects, authenticates and selects the database.
absl::StatusOr<ContextPtr> Dial(const RedisUrl& url, const RedisOptions& options) {
  ContextPtr c(redisConnectWithTimeout(url.host.c_str(), url.port,
                                       TimeoutOf(options.connect_timeout)));
  if (c == nullptr) return absl::ResourceExhaustedError("redis: out of memory allocating a context");
  if (c->err != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to redis at ", url.Redacted(), ": ", c->errstr));
  }
  redisSetTimeout(c.get(), TimeoutOf(options.command_timeout));
  redisEnableKeepAlive(c.get());
  bool broken = false;
  if (!url.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    auto r = RunOn(c.get(), url, options, auth, &broken);
    if (!r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::PermissionDeniedError(
          absl::StrCat("redis at ", url.Redacted(), " refused the password (",
                       r.status().message(), "): check cluster.redis_password_env"));
    }
  }
  if (url.db != 0) {
    auto r = RunOn(c.get(), url, options, {"SELECT", absl::StrCat(url.db)}, &broken);
    if (!r.ok()) {
      return absl::Status(r.status().code(),
                          absl::StrCat("redis SELECT ", url.db, ": ", r.status().message()));
    }
  }
  return c;
}

}  // namespace

absl::Status RedisClient::ConnectLocked() {
  if (ctx_ != nullptr) return absl::OkStatus();
  auto c = Dial(url_, options_);
  if (!c.ok()) return c.status();
  ctx_ = c->release();
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisClient::RunLocked(const std::vector<std::string>& argv,
                                                  bool* timed_out) {
  bool broken = false;
  auto r = RunOn(ctx_, url_, options_, argv, &broken, timed_out);
  if (broken) CloseLocked();
  return r;
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("redis: empty command");
  absl::MutexLock lock(&mu_);
  const bool reused = ctx_ != nullptr;
  if (absl::Status s = ConnectLocked(); !s.ok()) return s;
  bool timed_out = false;
  auto r = RunLocked(argv, &timed_out);
  // A kept connection the server dropped meanwhile (Redis restarted, or closed an idle client)
  // fails on its first use, before the new server saw the command: retry once on a fresh one, so
  // a restart costs no call an error. Not after a timeout (the command may be running).
  if (!r.ok() && reused && ctx_ == nullptr && !timed_out) {
    if (absl::Status s = ConnectLocked(); !s.ok()) return r.status();
    r = RunLocked(argv, &timed_out);
  }
  return r;
}

absl::Status RedisClient::Ping() {
  auto r = Command({"PING"});
  if (!r.ok()) return r.status();
  if (r->type != RedisReply::Type::kStatus || r->str != "PONG") {
    return absl::UnavailableError(absl::StrCat("redis at ", url_.Redacted(),
                                               " answered PING with \"", r->str, "\""));
  }
  return absl::OkStatus();
}

RedisSubscriber::RedisSubscriber(RedisUrl url, std::vector<std::string> channels,
                                 MessageFn on_message, StateFn on_state, RedisOptions options)
    : url_(std::move(url)),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)),
      on_state_(std::move(on_state)),
      options_(options),
      stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  thread_ = std::thread([this] { Loop(); });
}

RedisSubscriber::~RedisSubscriber() {
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
    // eventfd writes of 1 cannot fail short of a bad fd; the thread then stops at its next poll
  }
  thread_.join();
  close(stop_fd_);
}

bool RedisSubscriber::Pause(absl::Duration d) {
  pollfd p{stop_fd_, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(d))) == 0;
}

void RedisSubscriber::Loop() {
  absl::Duration backoff = absl::Milliseconds(100);
  for (;;) {
    const absl::Time started = absl::Now();
    absl::Status st = Session();
    if (st.ok()) return;  // stopped
    if (on_state_) on_state_(false);
    // A session that lasted a while was healthy: start the backoff again.
    if (absl::Now() - started > absl::Seconds(5)) backoff = absl::Milliseconds(100);
    if (!Pause(backoff)) return;
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

absl::Status RedisSubscriber::Session() {
  auto c = Dial(url_, options_);
  if (!c.ok()) return c.status();
  redisContext* ctx = c->get();
  std::vector<const char*> args = {"SUBSCRIBE"};
  std::vector<size_t> lens = {9};
  for (const std::string& ch : channels_) {
    args.push_back(ch.data());
    lens.push_back(ch.size());
  }
  if (redisAppendCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()) !=
      REDIS_OK) {
    return absl::UnavailableError(absl::StrCat("redis SUBSCRIBE: ", ctx->errstr));
  }
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx, &done) != REDIS_OK) {
      return absl::UnavailableError(absl::StrCat("redis SUBSCRIBE: ", ctx->errstr));
    }
  }
  size_t confirmed = 0;
  for (;;) {
    // Deliver every complete reply already read, then wait for more bytes or the stop.
    void* raw = nullptr;
    while (redisGetReplyFromReader(ctx, &raw) == REDIS_OK && raw != nullptr) {
      ReplyPtr reply(static_cast<redisReply*>(raw));
      raw = nullptr;
      auto r = Convert(reply.get());
      if (!r.ok()) return r.status();
      if (r->type != RedisReply::Type::kArray || r->elements.size() < 3) continue;
      const std::string& kind = r->elements[0].str;
      if (kind == "subscribe") {
        if (++confirmed == channels_.size() && on_state_) on_state_(true);
      } else if (kind == "message") {
        on_message_(r->elements[1].str, r->elements[2].str);
      }
    }
    if (ctx->err != 0) return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
    pollfd p[2] = {{ctx->fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError("redis subscriber: poll failed");
    }
    if (p[1].revents != 0) return absl::OkStatus();
    if (redisBufferRead(ctx) != REDIS_OK) {
      return absl::UnavailableError(absl::StrCat("redis at ", url_.Redacted(), ": ",
                                                 ctx->errstr[0] ? ctx->errstr : "connection lost"));
    }
  }
}

std::string LuaNowArg(std::optional<absl::Time> now) {
  return now ? absl::StrCat(absl::ToUnixMillis(*now)) : std::string();
}

const RedisScript& RenewMembersScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i]); n = n + 1
  end
end
if n > 0 then redis.call('PEXPIRE', KEYS[1], ttl + 1000) end
return n
)lua"));
  return *s;
}

RedisScript::RedisScript(std::string source) : source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

absl::StatusOr<RedisReply> RedisScript::Run(RedisClient& client,
                                            const std::vector<std::string>& keys,
                                            const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"EVALSHA", sha1_, absl::StrCat(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = client.Command(argv);
  if (r.ok() || !absl::StrContains(r.status().message(), "NOSCRIPT")) return r;
  // Not in the script cache (Redis restarted or SCRIPT FLUSH): load it and run it once more.
  auto loaded = client.Command({"SCRIPT", "LOAD", source_});
  if (!loaded.ok()) return loaded.status();
  if (loaded->str != sha1_) {
    return absl::InternalError(absl::StrCat("redis SCRIPT LOAD answered sha ", loaded->str,
                                            ", expected ", sha1_));
  }
  return client.Command(argv);
}

}  // namespace lmgate::cluster
