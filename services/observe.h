// What lmgate reports about each call: Prometheus metrics and one structured (JSON) access-log
// line with the request id. The gRPC shells call it when a call ends; lifecycle events feed the
// load/unload metrics. Thread-safe.
//
// Label values are bounded: `model` is a model the host or the config knows, else "other"
// (Gateway::ModelLabel); `tenant` is a configured tenant, "anonymous" (no keys configured) or ""
// (the caller was not authenticated), never a string the caller chose.
#ifndef LMGATE_SERVICES_OBSERVE_H_
#define LMGATE_SERVICES_OBSERVE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/gateway/gateway.h"
#include "services/lifecycle/events.h"
#include "services/metrics/metrics.h"

namespace lmgate::services {

// What one call's access-log line says about it (besides its status and durations). Filled in
// by CallInfoFor() when the call starts and by the service method as it learns more.
struct CallInfo {
  std::string method;  // "Chat", "Embed", ...
  std::string request_id;
  std::string trace_id;  // of the caller's W3C traceparent, "" without one
  std::string peer;      // gRPC peer string, "ipv4:127.0.0.1:5555"
  std::string tenant;    // the authorised tenant; "" until (or unless) the caller is authorised
  std::string model;
  std::string instance;  // unary calls that name one (LoadModel); generations take the outcome's
  backends::DriverKind driver = backends::DriverKind::kAuto;  // unary calls fill it in
  absl::Time start = absl::Now();
};

class Observer {
 public:
  // `registry` must outlive the observer; `gateway` provides queue gauges at scrape time.
  Observer(metrics::Registry* registry, gateway::Gateway* gateway);

  void Generated(const CallInfo& call, const absl::StatusOr<gateway::GenerateOutcome>& outcome);
  void Unary(const CallInfo& call, const absl::Status& status);
  void ModelEvent(const lifecycle::Event& event);

 private:
  void Log(const CallInfo& call, absl::string_view driver, const absl::Status& status,
           absl::Duration took, const gateway::GenerateOutcome* outcome);
  metrics::Registry* const registry_;
  gateway::Gateway* const gateway_;
};

// One log line per lifecycle event (logger "lifecycle"): loaded, load failed/cancelled, unloaded,
// expired, evicted, changed outside lmgate — with the event's cause (`reason`: "idle TTL expired",
// "evicted to make room for <model>", "UnloadModel by tenant <name>", ...). Starts are debug.
// Call it outside any registry lock (the server's event subscriber does).
void LogModelEvent(const lifecycle::Event& event);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_OBSERVE_H_
