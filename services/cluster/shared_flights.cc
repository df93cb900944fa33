#include "services/cluster/shared_flights.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace lmgate::cluster {
namespace {

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// KEYS: flight, waiters, result. ARGV: now, gateway, lead ttl, waiter member, waiter ttl.
// Returns {1, gateway} leading, {0, leader} following. A new lead drops the previous flight's
// result (its followers then wait for this one's).
const RedisScript& JoinScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local lead_ttl, waiter_ttl = tonumber(ARGV[3]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + waiter_ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[2], waiter_ttl + 60000)
local leader = redis.call('HGET', KEYS[1], 'leader')
local expiry = tonumber(redis.call('HGET', KEYS[1], 'expiry') or '0')
if leader and expiry > now and leader ~= ARGV[2] then return {0, leader} end
if leader ~= ARGV[2] or expiry <= now then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[1], 'leader', ARGV[2], 'expiry', tostring(now + lead_ttl))
redis.call('PEXPIRE', KEYS[1], lead_ttl + 60000)
return {1, ARGV[2]}
)lua"));
  return *s;
}

// KEYS: flight. ARGV: now, gateway, lead ttl. 1 renewed, 0 lost.
const RedisScript& HeartbeatScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
if redis.call('HGET', KEYS[1], 'leader') ~= ARGV[2] then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expiry', tostring(now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl + 60000)
return 1
)lua"));
  return *s;
}

// KEYS: waiters. ARGV: now, ttl, members...
const RedisScript& RenewWaitersScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl + 60000)
return 0
)lua"));
  return *s;
}

// KEYS: waiters. ARGV: now.
const RedisScript& WaitersScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kLuaNowPrelude, R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
)lua"));
  return *s;
}

// KEYS: flight, result, waiters. ARGV: "", gateway, result, result ttl, channel, message.
// 1 finished and published, 0 not the leader.
const RedisScript& FinishScript() {
  static const RedisScript* s = new RedisScript(R"lua(
if redis.call('HGET', KEYS[1], 'leader') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
)lua");
  return *s;
}

absl::Status Unavailable(const absl::Status& st) {
  return absl::UnavailableError(absl::StrCat("shared loads: ", st.message()));
}

std::string Message(const std::string& flight, const char* kind, const std::string& gateway,
                    const std::string& payload) {
  return nlohmann::json{{"flight", flight}, {"kind", kind}, {"gateway", gateway},
                        {"payload", payload}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

SharedFlights::SharedFlights(RedisClient* client, std::string ns, std::string gateway,
                             SharedFlightsOptions options)
    : client_(client), ns_(std::move(ns)), gateway_(std::move(gateway)), options_(options) {}

std::string SharedFlights::Key(const char* kind, const std::string& flight) const {
  return absl::StrCat("lmgate:{", ns_, "}:", kind, ":", flight);
}

std::string SharedFlights::channel() const { return absl::StrCat("lmgate:{", ns_, "}:flights"); }

absl::StatusOr<FlightMessage> SharedFlights::ParseMessage(const std::string& payload) {
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("flight message: not a JSON object");
  FlightMessage m;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"flight", &m.flight},
                            {"kind", &m.kind},
                            {"gateway", &m.gateway},
                            {"payload", &m.payload}}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("flight message: no string \"", field, "\""));
    }
    *out = it->get<std::string>();
  }
  return m;
}

absl::StatusOr<FlightRole> SharedFlights::Join(const std::string& flight, const std::string& waiter,
                                               std::optional<absl::Time> now) {
  auto r = JoinScript().Run(
      *client_, {Key("flight", flight), Key("waiters", flight), Key("result", flight)},
      {LuaNowArg(now), gateway_, absl::StrCat(Ms(options_.lead_ttl)),
       absl::StrCat(gateway_, "/", waiter), absl::StrCat(Ms(options_.waiter_ttl))});
  if (!r.ok()) return Unavailable(r.status());
  if (r->elements.size() != 2) return absl::UnavailableError("shared loads: bad join answer");
  FlightRole role;
  role.leader = r->elements[0].integer == 1;
  role.leader_gateway = r->elements[1].str;
  return role;
}

absl::Status SharedFlights::Heartbeat(const std::string& flight, std::optional<absl::Time> now) {
  auto r = HeartbeatScript().Run(*client_, {Key("flight", flight)},
                                 {LuaNowArg(now), gateway_, absl::StrCat(Ms(options_.lead_ttl))});
  if (!r.ok()) return Unavailable(r.status());
  if (r->integer != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("lost the lead of load ", flight, " (it lapsed; another lmgate leads it)"));
  }
  return absl::OkStatus();
}

absl::Status SharedFlights::RenewWaiters(const std::string& flight,
                                         const std::vector<std::string>& waiters,
                                         std::optional<absl::Time> now) {
  if (waiters.empty()) return absl::OkStatus();
  std::vector<std::string> args = {LuaNowArg(now), absl::StrCat(Ms(options_.waiter_ttl))};
  for (const std::string& w : waiters) args.push_back(absl::StrCat(gateway_, "/", w));
  auto r = RenewWaitersScript().Run(*client_, {Key("waiters", flight)}, args);
  return r.ok() ? absl::OkStatus() : Unavailable(r.status());
}

absl::Status SharedFlights::RemoveWaiter(const std::string& flight, const std::string& waiter) {
  auto r = client_->Command({"ZREM", Key("waiters", flight), absl::StrCat(gateway_, "/", waiter)});
  return r.ok() ? absl::OkStatus() : Unavailable(r.status());
}

absl::StatusOr<int64_t> SharedFlights::Waiters(const std::string& flight,
                                               std::optional<absl::Time> now) {
  auto r = WaitersScript().Run(*client_, {Key("waiters", flight)}, {LuaNowArg(now)});
  if (!r.ok()) return Unavailable(r.status());
  return r->integer;
}

absl::Status SharedFlights::Progress(const std::string& flight, const std::string& payload) {
  auto r = client_->Command({"PUBLISH", channel(), Message(flight, "progress", gateway_, payload)});
  return r.ok() ? absl::OkStatus() : Unavailable(r.status());
}

absl::Status SharedFlights::Finish(const std::string& flight, const std::string& result) {
  auto r = FinishScript().Run(
      *client_, {Key("flight", flight), Key("result", flight), Key("waiters", flight)},
      {"", gateway_, result, absl::StrCat(Ms(options_.result_ttl)), channel(),
       Message(flight, "done", gateway_, result)});
  if (!r.ok()) return Unavailable(r.status());
  if (r->integer != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("load ", flight, " is not led by lmgate ", gateway_, "; nothing published"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> SharedFlights::Result(const std::string& flight) {
  auto r = client_->Command({"GET", Key("result", flight)});
  if (!r.ok()) return Unavailable(r.status());
  if (r->is_nil()) return std::optional<std::string>();
  return std::optional<std::string>(r->str);
}

}  // namespace lmgate::cluster
