// The one place absl::Status becomes grpc::Status (STYLE: absl inside, gRPC only at the edge).
#ifndef LMGATE_SERVICES_STATUS_H_
#define LMGATE_SERVICES_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace lmgate::services {

// Same code, same message. An OK status maps to grpc::Status::OK. UNKNOWN/INTERNAL keep their
// code but are logged by the caller: they mean a bug in lmgate, not bad input.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_STATUS_H_
