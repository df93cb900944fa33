// HostOps: the LM Studio host operations the model registry needs (list, load, unload), and
// DriverHostOps, their implementation over a DriverSet with the one driver-fallback loop.
// One HostOps serves one host: a registry, and so every instance it names, belongs to one host.
#ifndef LMGATE_SERVICES_LIFECYCLE_HOST_OPS_H_
#define LMGATE_SERVICES_LIFECYCLE_HOST_OPS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backends/driver.h"
#include "backends/selector.h"

namespace lmgate::lifecycle {

using backends::CallContext;
using backends::DriverKind;

// Host operations the registry needs. Implemented over a DriverSet by DriverHostOps; tests may
// pass their own. Same threading rules as backends::Driver (blocking, thread-safe).
class HostOps {
 public:
  virtual ~HostOps() = default;
  virtual absl::StatusOr<backends::HostModels> List(const CallContext& ctx) = 0;
  virtual absl::StatusOr<backends::InstanceInfo> Load(const CallContext& ctx, DriverKind driver,
                                                      const backends::LoadParams& params,
                                                      const backends::LoadProgressFn& progress,
                                                      DriverKind* used) = 0;
  // `*used` (if not null) gets the driver that performed (or last tried) the unload.
  virtual absl::Status Unload(const CallContext& ctx, DriverKind driver,
                              const std::string& identifier, DriverKind* used) = 0;
};

// HostOps over a DriverSet: AUTO selection with fallback on UNAVAILABLE. When the chain ends
// with a driver that could not run at all (FAILED_PRECONDITION, e.g. the cli driver without
// `lms`) after an earlier driver answered UNAVAILABLE, that UNAVAILABLE is returned.
class DriverHostOps : public HostOps {
 public:
  explicit DriverHostOps(std::shared_ptr<backends::DriverSet> drivers)
      : drivers_(std::move(drivers)) {}
  absl::StatusOr<backends::HostModels> List(const CallContext& ctx) override;
  absl::StatusOr<backends::InstanceInfo> Load(const CallContext& ctx, DriverKind driver,
                                              const backends::LoadParams& params,
                                              const backends::LoadProgressFn& progress,
                                              DriverKind* used) override;
  absl::Status Unload(const CallContext& ctx, DriverKind driver, const std::string& identifier,
                      DriverKind* used) override;
  // The driver whose listing last succeeded; nullopt while the host has never answered one.
  std::optional<DriverKind> last_listed() const;

 private:
  std::shared_ptr<backends::DriverSet> drivers_;
  mutable absl::Mutex mu_;
  std::optional<DriverKind> last_listed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_HOST_OPS_H_
