// The one place absl::Status becomes grpc::Status (STYLE: absl inside, gRPC only at the edge).
#ifndef LMGATE_SERVICES_STATUS_H_
#define LMGATE_SERVICES_STATUS_H_

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "services/admission/retry_after.h"

namespace lmgate::services {

// Same code, same message. An OK status maps to grpc::Status::OK. UNKNOWN/INTERNAL keep their
// code but are logged by the caller: they mean a bug in lmgate, not bad input.
grpc::Status ToGrpcStatus(const absl::Status& status);

inline constexpr char kRetryAfterTrailer[] = "retry-after-ms";

// The same, and the status's retry hint (an admission refusal, admission/retry_after.h) as the
// `retry-after-ms` trailer through `call->AddTrailingMetadata` — a grpc::ServerContextBase or a
// StreamReactor channel. Call before finishing the RPC.
template <typename Call>
grpc::Status ToGrpcStatus(const absl::Status& status, Call* call) {
  if (auto ms = admission::RetryAfterMs(status)) {
    call->AddTrailingMetadata(kRetryAfterTrailer, std::to_string(*ms));
  }
  return ToGrpcStatus(status);
}

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_STATUS_H_
