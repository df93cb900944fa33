#include "services/cluster/shared_quota.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/admission/retry_after.h"

namespace lmgate::cluster {
namespace {

// After kLuaNowPrelude (ARGV[1] = now).
constexpr char kBuckets[] = R"lua(
-- A bucket of `cap` per minute, refilled continuously; full when never used (or expired).
local function level(key, p, cap)
  local l = tonumber(redis.call('HGET', key, p .. 'l'))
  local at = tonumber(redis.call('HGET', key, p .. 't'))
  if l == nil or at == nil then return cap end
  l = l + (now - at) * cap / 60000
  if l > cap then l = cap end
  return l
end
-- Keep the bucket until it would be full again (forgetting it then changes nothing).
local function keep(key, p, l, cap)
  redis.call('HSET', key, p .. 'l', tostring(l), p .. 't', tostring(now))
  local full_in = math.ceil((cap - l) * 60000 / cap) + 1000
  if redis.call('PTTL', key) < full_in then redis.call('PEXPIRE', key, full_in) end
end
)lua";

// KEYS: quota hash, streams zset. ARGV: now, rpm, tpm, concurrent, permit id, ttl ms.
// Returns {0} when admitted, else {which limit (1 streams, 2 tokens, 3 requests), retry ms}.
const RedisScript& AdmitScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, kBuckets, R"lua(
local rpm, tpm, conc, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if conc > 0 and redis.call('ZCARD', KEYS[2]) >= conc then
  return {1, 1000}
end
local tl, rl
if tpm > 0 then
  tl = level(KEYS[1], 't', tpm)
  if tl <= 0 then return {2, math.ceil((1 - tl) * 60000 / tpm)} end
end
if rpm > 0 then
  rl = level(KEYS[1], 'r', rpm)
  if rl < 1 then return {3, math.ceil((1 - rl) * 60000 / rpm)} end
end
if tpm > 0 then keep(KEYS[1], 't', tl, tpm) end
if rpm > 0 then keep(KEYS[1], 'r', rl - 1, rpm) end
if conc > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[5])
  if redis.call('PTTL', KEYS[2]) < ttl + 1000 then redis.call('PEXPIRE', KEYS[2], ttl + 1000) end
end
return {0, 0}
)lua"));
  return *s;
}

// KEYS: quota hash. ARGV: now, tpm, tokens.
const RedisScript& ChargeScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, kBuckets, R"lua(
local tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
keep(KEYS[1], 't', level(KEYS[1], 't', tpm) - tokens, tpm)
return 0
)lua"));
  return *s;
}

// KEYS: streams zset. ARGV: now. Returns the live permits.
const RedisScript& StreamsScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, kBuckets, R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
)lua"));
  return *s;
}

// KEYS: streams zset. ARGV: now, ttl ms, permits... Drops lapsed permits, (re)adds the given ones
// with expiry now + ttl; returns how many were missing.
const RedisScript& HoldScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = 0
for i = 3, #ARGV do
  added = added + redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then redis.call('PEXPIRE', KEYS[1], ttl + 1000) end
return added
)lua"));
  return *s;
}

}  // namespace

SharedQuota::SharedQuota(RedisClient* client, std::string ns, SharedQuotaOptions options)
    : client_(client), ns_(std::move(ns)), options_(options) {}

std::string SharedQuota::QuotaKey(const std::string& tenant) const {
  return absl::StrCat("lmgate:{", ns_, "}:quota:", tenant);
}

std::string SharedQuota::StreamsKey(const std::string& tenant) const {
  return absl::StrCat("lmgate:{", ns_, "}:streams:", tenant);
}

absl::Status SharedQuota::Admit(const std::string& tenant, const QuotaLimits& l,
                                const std::string& permit_id, absl::Duration* retry_after,
                                std::optional<absl::Time> now) {
  if (l.requests_per_minute <= 0 && l.tokens_per_minute <= 0 && l.concurrent_streams <= 0) {
    return absl::OkStatus();  // nothing to share
  }
  auto r = AdmitScript().Run(
      *client_, {QuotaKey(tenant), StreamsKey(tenant)},
      {LuaNowArg(now), absl::StrCat(l.requests_per_minute), absl::StrCat(l.tokens_per_minute),
       absl::StrCat(l.concurrent_streams), permit_id,
       absl::StrCat(absl::ToInt64Milliseconds(options_.permit_ttl))});
  if (!r.ok()) {
    return absl::UnavailableError(
        absl::StrCat("shared quota of tenant ", tenant, ": ", r.status().message()));
  }
  if (r->elements.size() != 2) {
    return absl::UnavailableError("shared quota: the admit script answered an unexpected shape");
  }
  const int64_t which = r->elements[0].integer;
  if (which == 0) return absl::OkStatus();
  const absl::Duration wait = absl::Milliseconds(r->elements[1].integer);
  if (retry_after != nullptr) *retry_after = wait;
  std::string what;
  switch (which) {
    case 1:
      what = absl::StrCat("limit of ", l.concurrent_streams,
                          " concurrent requests reached (across all gateways)");
      break;
    case 2:
      what = absl::StrCat("limit of ", l.tokens_per_minute,
                          " tokens/minute reached (across all gateways)");
      break;
    default:
      what = absl::StrCat("limit of ", l.requests_per_minute,
                          " requests/minute reached (across all gateways)");
  }
  return admission::WithRetryAfter(
      absl::ResourceExhaustedError(absl::StrFormat("tenant %s: %s; retry in %.1fs", tenant, what,
                                                   absl::ToDoubleSeconds(wait))),
      wait);
}

absl::StatusOr<int64_t> SharedQuota::Renew(const std::string& tenant,
                                           const std::vector<std::string>& permits,
                                           std::optional<absl::Time> now) {
  if (permits.empty()) return 0;
  std::vector<std::string> args = {LuaNowArg(now),
                                   absl::StrCat(absl::ToInt64Milliseconds(options_.permit_ttl))};
  args.insert(args.end(), permits.begin(), permits.end());
  auto r = RenewMembersScript().Run(*client_, {StreamsKey(tenant)}, args);
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  return r->integer;
}

absl::StatusOr<int64_t> SharedQuota::Hold(const std::string& tenant,
                                          const std::vector<std::string>& permits,
                                          std::optional<absl::Time> now) {
  if (permits.empty()) return 0;
  std::vector<std::string> args = {LuaNowArg(now),
                                   absl::StrCat(absl::ToInt64Milliseconds(options_.permit_ttl))};
  args.insert(args.end(), permits.begin(), permits.end());
  auto r = HoldScript().Run(*client_, {StreamsKey(tenant)}, args);
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  return r->integer;
}

absl::Status SharedQuota::Release(const std::string& tenant, const std::string& permit_id) {
  auto r = client_->Command({"ZREM", StreamsKey(tenant), permit_id});
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  return absl::OkStatus();
}

absl::Status SharedQuota::Charge(const std::string& tenant, const QuotaLimits& l, int64_t tokens,
                                 std::optional<absl::Time> now) {
  if (l.tokens_per_minute <= 0 || tokens <= 0) return absl::OkStatus();
  auto r = ChargeScript().Run(*client_, {QuotaKey(tenant)},
                              {LuaNowArg(now), absl::StrCat(l.tokens_per_minute),
                               absl::StrCat(tokens)});
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SharedQuota::Streams(const std::string& tenant,
                                             std::optional<absl::Time> now) {
  auto r = StreamsScript().Run(*client_, {StreamsKey(tenant)}, {LuaNowArg(now)});
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  return r->integer;
}

}  // namespace lmgate::cluster
