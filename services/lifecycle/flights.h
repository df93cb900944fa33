// LoadFlights: who runs the upstream load of a flight (one load per model + load settings) when
// several lmgates front one host, behind an interface so that a shared implementation
// (services/cluster/cluster_flights.h, on Redis) can replace the in-process one without touching
// the registry's flights (registry_flights.cc).
//
// The registry keeps its own single flight per gateway (waiters, progress, result); a FlightLink
// ties that flight to the same flight key in the other gateways:
// - Open() when the flight is created (under the registry lock: never blocks).
// - AwaitTurn() on the flight's thread (no registry lock; may block on the shared store): either
//   this gateway leads (it loads upstream, reports Progress, then Finish), or another gateway's
//   load finished and its result is handed over (this gateway adopts the instance).
// - LocalWaiters() under the registry lock whenever this gateway's waiter count drops to zero or
//   rises again: true = nobody waits anywhere (as far as known), cancel the flight now; false =
//   other gateways may still wait, and the link calls `abandoned` (given to Open) once nobody
//   anywhere does.
// - The link is destroyed on the flight's thread, outside the registry lock, after Finish.
//
// LocalFlights is today's behaviour: every flight leads, a flight without waiters is cancelled.
#ifndef LMGATE_SERVICES_LIFECYCLE_FLIGHTS_H_
#define LMGATE_SERVICES_LIFECYCLE_FLIGHTS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/driver.h"
#include "backends/types.h"

namespace lmgate::lifecycle {

class FlightLink {
 public:
  enum class Turn {
    kLead,      // run the upstream load here
    kFollowed,  // another gateway ran it: its result is in *result
  };
  virtual ~FlightLink() = default;

  // Flight thread, once. Blocks until this gateway should load (kLead) or another gateway's load
  // of the same flight key finished (kFollowed, *result = its instance or its error). While it
  // follows, `progress` gets that load's progress (on this thread). `cancel` (the flight's own
  // token) ends a wait early: kFollowed with CANCELLED.
  virtual Turn AwaitTurn(const backends::CancelToken& cancel,
                         const std::function<void(double)>& progress,
                         absl::StatusOr<backends::InstanceInfo>* result) = 0;
  // True when the lead was taken through the shared store (other gateways may have loaded
  // meanwhile: re-read the host before loading). False for the in-process link and fallbacks.
  virtual bool shared_lead() const = 0;
  // Leader: the upstream load's progress (any thread but the registry lock's; never blocks).
  virtual void Progress(double fraction) = 0;
  // Flight thread, once, when the flight ends whatever its turn was (followers ignore it).
  virtual void Finish(const absl::StatusOr<backends::InstanceInfo>& result) = 0;
  // Under the registry lock (never blocks): this gateway now has `n` waiters of the flight.
  // For n == 0: true = cancel the load now; false = `abandoned` will say when.
  virtual bool LocalWaiters(int n) = 0;
};

class LoadFlights {
 public:
  virtual ~LoadFlights() = default;
  // Under the registry lock; never blocks. `abandoned` runs at most once, on the
  // implementation's thread without the registry lock, when this gateway leads the flight and
  // nobody waits for it in any gateway.
  virtual std::unique_ptr<FlightLink> Open(const std::string& flight_key,
                                           std::function<void()> abandoned) = 0;
};

// The in-process link: always leads; a flight without waiters is cancelled at once.
// Thread-compatible (the registry serialises).
class LocalFlightLink : public FlightLink {
 public:
  Turn AwaitTurn(const backends::CancelToken&, const std::function<void(double)>&,
                 absl::StatusOr<backends::InstanceInfo>*) override {
    return Turn::kLead;
  }
  bool shared_lead() const override { return false; }
  void Progress(double) override {}
  void Finish(const absl::StatusOr<backends::InstanceInfo>&) override {}
  bool LocalWaiters(int) override { return true; }
};

class LocalFlights : public LoadFlights {
 public:
  std::unique_ptr<FlightLink> Open(const std::string&, std::function<void()>) override {
    return std::make_unique<LocalFlightLink>();
  }
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_FLIGHTS_H_
