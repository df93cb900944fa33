#include "services/cluster/shared_leases.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"

namespace lmgate::cluster {
namespace {

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// KEYS: leases, unloading. ARGV: now, holder, ttl ms.
// {1} granted; {0, reserving gateway} refused.
const RedisScript& AcquireScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local by = redis.call('GET', KEYS[2])
if by then return {0, by} end
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then redis.call('PEXPIRE', KEYS[1], ttl + 1000) end
return {1}
)lua"));
  return *s;
}

// KEYS: leases, used. ARGV: now, holder, used ttl ms. The last use only moves forward.
const RedisScript& ReleaseScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
redis.call('ZREM', KEYS[1], ARGV[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > last then last = now end
redis.call('SET', KEYS[2], tostring(last), 'PX', tonumber(ARGV[3]))
return 0
)lua"));
  return *s;
}

// KEYS: leases. ARGV: now. Live holders.
const RedisScript& HoldersScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
)lua"));
  return *s;
}

// KEYS: leases, unloading, used. ARGV: now, gateway, reserve ttl ms, force (0/1), idle ttl ms
// (0: not an expiry). Returns {code, detail...}:
//   {1, holders...} granted (holders: those a forced unload cuts);
//   {0, holders...} refused, leased;   {2, gateway} refused, another gateway is unloading it;
//   {3, last use ms} refused, used within the idle TTL.
const RedisScript& ReserveScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local by = redis.call('GET', KEYS[2])
if by and by ~= ARGV[2] then return {2, by} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local holders = redis.call('ZRANGE', KEYS[1], 0, -1)
local force, idle = ARGV[4] == '1', tonumber(ARGV[5])
if #holders > 0 and not force then
  table.insert(holders, 1, 0); return holders
end
if idle > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if last + idle > now then return {3, tostring(last)} end
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[3]))
table.insert(holders, 1, 1); return holders
)lua"));
  return *s;
}

// KEYS: unloading, leases, used. ARGV: "" (no clock), gateway, unloaded (0/1).
const RedisScript& FinishScript() {
  static const RedisScript* s = new RedisScript(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
if ARGV[3] == '1' then redis.call('DEL', KEYS[2], KEYS[3]) end
return 0
)lua");
  return *s;
}

absl::Status Unavailable(const absl::Status& st) {
  return absl::UnavailableError(absl::StrCat("shared leases: ", st.message()));
}

}  // namespace

SharedLeases::SharedLeases(RedisClient* client, std::string ns, std::string gateway,
                           SharedLeasesOptions options)
    : client_(client), ns_(std::move(ns)), gateway_(std::move(gateway)), options_(options) {}

std::string SharedLeases::Key(const char* kind, const std::string& instance) const {
  return absl::StrCat("lmgate:{", ns_, "}:", kind, ":", instance);
}

absl::Status SharedLeases::Acquire(const std::string& instance, const std::string& lease,
                                   std::optional<absl::Time> now) {
  auto r = AcquireScript().Run(*client_, {Key("leases", instance), Key("unloading", instance)},
                               {LuaNowArg(now), absl::StrCat(gateway_, "/", lease),
                                absl::StrCat(Ms(options_.lease_ttl))});
  if (!r.ok()) return Unavailable(r.status());
  if (!r->elements.empty() && r->elements[0].integer == 1) return absl::OkStatus();
  const std::string by = r->elements.size() > 1 ? r->elements[1].str : "?";
  return absl::FailedPreconditionError(absl::StrCat(
      "instance ", instance, " is being unloaded by lmgate ", by, "; it cannot take new requests"));
}

absl::StatusOr<int64_t> SharedLeases::Renew(const std::string& instance,
                                            const std::vector<std::string>& leases,
                                            std::optional<absl::Time> now) {
  if (leases.empty()) return 0;
  std::vector<std::string> args = {LuaNowArg(now), absl::StrCat(Ms(options_.lease_ttl))};
  for (const std::string& l : leases) args.push_back(absl::StrCat(gateway_, "/", l));
  auto r = RenewMembersScript().Run(*client_, {Key("leases", instance)}, args);
  if (!r.ok()) return Unavailable(r.status());
  return r->integer;
}

absl::Status SharedLeases::Release(const std::string& instance, const std::string& lease,
                                   std::optional<absl::Time> now) {
  auto r = ReleaseScript().Run(*client_, {Key("leases", instance), Key("used", instance)},
                               {LuaNowArg(now), absl::StrCat(gateway_, "/", lease),
                                absl::StrCat(Ms(options_.used_ttl))});
  if (!r.ok()) return Unavailable(r.status());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SharedLeases::Holders(const std::string& instance,
                                                               std::optional<absl::Time> now) {
  auto r = HoldersScript().Run(*client_, {Key("leases", instance)}, {LuaNowArg(now)});
  if (!r.ok()) return Unavailable(r.status());
  std::vector<std::string> out;
  for (const RedisReply& e : r->elements) out.push_back(e.str);
  return out;
}

absl::StatusOr<Reservation> SharedLeases::ReserveUnload(const std::string& instance,
                                                        UnloadReason reason, bool force,
                                                        absl::Duration idle_ttl,
                                                        std::optional<absl::Time> now) {
  const bool expiry = reason == UnloadReason::kExpired;
  auto r = ReserveScript().Run(
      *client_, {Key("leases", instance), Key("unloading", instance), Key("used", instance)},
      {LuaNowArg(now), gateway_, absl::StrCat(Ms(options_.reserve_ttl)), force ? "1" : "0",
       absl::StrCat(expiry ? Ms(idle_ttl) : 0)});
  if (!r.ok()) return Unavailable(r.status());
  if (r->elements.empty()) return absl::UnavailableError("shared leases: empty reserve answer");
  Reservation out;
  const int64_t code = r->elements[0].integer;
  switch (code) {
    case 1:
    case 0:
      out.granted = code == 1;
      for (size_t i = 1; i < r->elements.size(); ++i) out.holders.push_back(r->elements[i].str);
      break;
    case 2:
      out.reserved_by = r->elements.size() > 1 ? r->elements[1].str : "?";
      break;
    case 3: {
      int64_t ms = 0;
      if (r->elements.size() > 1 && absl::SimpleAtoi(r->elements[1].str, &ms)) {
        out.last_use = absl::FromUnixMillis(ms);
      }
      break;
    }
    default:
      return absl::UnavailableError(absl::StrCat("shared leases: reserve answered code ", code));
  }
  return out;
}

absl::Status SharedLeases::FinishUnload(const std::string& instance, bool unloaded) {
  auto r = FinishScript().Run(
      *client_, {Key("unloading", instance), Key("leases", instance), Key("used", instance)},
      {"", gateway_, unloaded ? "1" : "0"});
  if (!r.ok()) return Unavailable(r.status());
  return absl::OkStatus();
}

}  // namespace lmgate::cluster
