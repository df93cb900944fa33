// Single-flight loads across every lmgate in front of one LM Studio host, through Redis (issue 14):
// one upstream load per model + load settings ("flight"), whichever gateways the first requests
// reach; waiters in every gateway get the load's progress and result; a load nobody waits for
// anywhere can be cancelled by its leader.
//
// - Join(): the first gateway becomes the flight's leader (a lead that it renews with Heartbeat;
//   a leader that dies lets the lead lapse after lead_ttl, and the next Join takes over). Every
//   other gateway follows: it registers its waiters and listens on channel() (RedisSubscriber) for
//   Progress/Finish messages of the flight; after a gap in its subscription it reads Result().
// - Waiters are registered per gateway and lapse like leases unless renewed; the leader reads
//   Waiters() to decide whether anybody still wants the load.
// - Finish() drops the lead, keeps the result for result_ttl (late followers read it) and
//   publishes it.
//
// Messages on channel() are JSON: {"flight","kind":"progress"|"done","gateway","payload"}; the
// payload is the caller's (progress fraction, instance identifier or error), opaque here.
//
// Keys (under lmgate:{<ns>}:): flight:<flight> (hash: leader, expiry), waiters:<flight> (sorted
// set), result:<flight>. All expire. Time comes from Redis unless a test passes `now`.
// Thread-safe.
#ifndef LMGATE_SERVICES_CLUSTER_SHARED_FLIGHTS_H_
#define LMGATE_SERVICES_CLUSTER_SHARED_FLIGHTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/cluster/redis.h"

namespace lmgate::cluster {

struct SharedFlightsOptions {
  absl::Duration lead_ttl = absl::Seconds(10);     // a lead not renewed this long lapses
  absl::Duration waiter_ttl = absl::Seconds(10);   // same for a registered waiter
  absl::Duration result_ttl = absl::Seconds(60);   // how long a finished flight's result is kept
};

struct FlightRole {
  bool leader = false;
  std::string leader_gateway;  // who leads (this gateway when `leader`)
};

struct FlightMessage {
  std::string flight;
  std::string kind;  // "progress" | "done"
  std::string gateway;
  std::string payload;
};

class SharedFlights {
 public:
  SharedFlights(RedisClient* client, std::string ns, std::string gateway,
                SharedFlightsOptions options = {});

  // The pub/sub channel of this host's flights (subscribe with RedisSubscriber).
  std::string channel() const;
  // Parses a message received on channel(); INVALID_ARGUMENT when it is not one of ours.
  static absl::StatusOr<FlightMessage> ParseMessage(const std::string& payload);

  // Leads `flight` unless a live leader exists; registers `waiter` (this gateway's) either way.
  // Joining again while leading renews the lead. After Finish, the next Join leads a new flight
  // (a failed load is tried again), and the old result is dropped.
  absl::StatusOr<FlightRole> Join(const std::string& flight, const std::string& waiter,
                                  std::optional<absl::Time> now = std::nullopt);
  // Extends this gateway's lead; FAILED_PRECONDITION when the lead was lost (it lapsed and
  // another gateway took over: stop loading, follow instead).
  absl::Status Heartbeat(const std::string& flight, std::optional<absl::Time> now = std::nullopt);
  // Renews (or, with `remove`, drops) this gateway's waiters of `flight`.
  absl::Status RenewWaiters(const std::string& flight, const std::vector<std::string>& waiters,
                            std::optional<absl::Time> now = std::nullopt);
  absl::Status RemoveWaiter(const std::string& flight, const std::string& waiter);
  // Live waiters of every gateway ("<gateway>/<waiter>").
  absl::StatusOr<int64_t> Waiters(const std::string& flight,
                                  std::optional<absl::Time> now = std::nullopt);

  absl::Status Progress(const std::string& flight, const std::string& payload);
  // Only the leader finishes; FAILED_PRECONDITION otherwise (nothing is published then).
  absl::Status Finish(const std::string& flight, const std::string& result);
  // The result of a finished flight, while kept.
  absl::StatusOr<std::optional<std::string>> Result(const std::string& flight);

 private:
  std::string Key(const char* kind, const std::string& flight) const;
  absl::Status Publish(const std::string& flight, const char* kind, const std::string& payload);

  RedisClient* const client_;
  const std::string ns_;
  const std::string gateway_;
  const SharedFlightsOptions options_;
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_SHARED_FLIGHTS_H_
