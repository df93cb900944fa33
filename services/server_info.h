// What GetServerInfo reports, gathered without gRPC: lmgate's version, each enabled driver probed
// now with its capabilities, and the LM Studio version when a driver can tell.
#ifndef LMGATE_SERVICES_SERVER_INFO_H_
#define LMGATE_SERVICES_SERVER_INFO_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backends/driver.h"
#include "backends/selector.h"

namespace lmgate::services {

struct DriverReport {
  backends::DriverKind kind = backends::DriverKind::kAuto;
  absl::Status probe;                     // OK = working
  std::vector<std::string> capabilities;  // CapabilityNames()
};

struct ServerReport {
  std::string version;
  std::vector<DriverReport> drivers;  // configured order
  std::string lmstudio_version;       // "unknown" when no working driver can tell
};

// The names of the capabilities `caps` has, in the Capabilities struct's order.
std::vector<std::string> CapabilityNames(const backends::Capabilities& caps);

// Probes every driver of `drivers` in turn (blocking: run it on a worker thread), then asks the
// first working one that can tell for the LM Studio version. Thread-safe.
ServerReport CollectServerInfo(const backends::DriverSet& drivers, const backends::CallContext& ctx);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_SERVER_INFO_H_
