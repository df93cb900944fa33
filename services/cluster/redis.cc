#include "services/cluster/redis.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

absl::StatusOr<RedisUrl> ParseRedisUrl(const std::string& url, const std::string& password_env) {
  absl::string_view rest(url);
  if (absl::StartsWith(rest, "rediss://")) {
    return absl::InvalidArgumentError(
        "cluster.redis_url: rediss:// (TLS) is not supported by this build's hiredis 0.14; use "
        "redis:// over a trusted network or a TLS tunnel (e.g. stunnel) to Redis");
  }
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster.redis_url must look like redis://[:password@]host[:port][/db], got \"", url,
        "\""));
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

absl::Status RedisClient::ConnectLocked() {
  if (ctx_ != nullptr) return absl::OkStatus();
  const timeval ct = TimeoutOf(options_.connect_timeout);
  redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, ct);
  if (c == nullptr) return absl::ResourceExhaustedError("redis: out of memory allocating a context");
  if (c->err != 0) {
    const std::string why = c->errstr;
    redisFree(c);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to redis at ", url_.Redacted(), ": ", why));
  }
  const timeval rt = TimeoutOf(options_.command_timeout);
  redisSetTimeout(c, rt);
  redisEnableKeepAlive(c);
  ctx_ = c;
  if (!url_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(url_.password);
    auto r = RunLocked(auth);
    if (!r.ok()) {
      CloseLocked();
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::PermissionDeniedError(
          absl::StrCat("redis at ", url_.Redacted(), " refused the password (",
                       r.status().message(), "): check cluster.redis_password_env"));
    }
  }
  if (url_.db != 0) {
    auto r = RunLocked({"SELECT", absl::StrCat(url_.db)});
    if (!r.ok()) {
      CloseLocked();
      return absl::Status(r.status().code(),
                          absl::StrCat("redis SELECT ", url_.db, ": ", r.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisClient::RunLocked(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data())));
  if (reply == nullptr) {
    // hiredis leaves the context unusable after an I/O error or a timeout: drop it, the next call
    // reconnects.
    const std::string why = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
    const bool timed_out = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    CloseLocked();
    return absl::UnavailableError(absl::StrCat(
        "redis at ", url_.Redacted(), ": ",
        timed_out ? absl::StrCat("no answer within ", absl::FormatDuration(options_.command_timeout))
                  : why));
  }
  return Convert(reply.get());
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("redis: empty command");
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ConnectLocked(); !s.ok()) return s;
  return RunLocked(argv);
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

std::string LuaNowArg(std::optional<absl::Time> now) {
  return now ? absl::StrCat(absl::ToUnixMillis(*now)) : std::string();
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
