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

struct CallInfo {
  std::string method;  // "Chat", "Embed", ...
  std::string request_id;
  std::string tenant;
  std::string model;
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

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_OBSERVE_H_
