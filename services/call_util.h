// Helpers shared by the gRPC service shells: request ids, CallContext from a gRPC context, and
// unary calls run on the worker pool with cancellation wired through.
#ifndef LMGATE_SERVICES_CALL_UTIL_H_
#define LMGATE_SERVICES_CALL_UTIL_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "backends/driver.h"
#include "services/observe.h"
#include "services/worker_pool.h"

namespace lmgate::services {

inline constexpr char kRequestIdHeader[] = "x-request-id";
inline constexpr char kDriverHeader[] = "x-lmgate-driver";

// The caller's x-request-id if it sent a sane one, else a new random id.
std::string RequestIdFor(const grpc::CallbackServerContext* ctx);
// The same from the header's value ("" = none sent), for the HTTP ingress.
std::string RequestIdFrom(absl::string_view sent);

// The caller's W3C `traceparent` if it is well-formed (version-traceid-parentid-flags, lower-case
// hex, ids not all zero, version not ff; a later version may append fields), else "".
std::string TraceparentFor(const grpc::CallbackServerContext* ctx);
// The same from the header's value ("" = none sent).
std::string TraceparentFrom(absl::string_view sent);
// The trace id (32 hex digits) of a traceparent TraceparentFor() accepted; "" for "".
std::string TraceIdOf(const std::string& traceparent);

// deadline + a fresh cancel token + request id + the caller's trace context.
backends::CallContext MakeCallContext(const grpc::CallbackServerContext* ctx,
                                      const std::string& request_id);

// The start of a call's access-log record: method, request id, trace id and peer.
CallInfo CallInfoFor(const grpc::CallbackServerContext* ctx, const char* method,
                     const std::string& request_id);

// Runs `work` on `pool` and finishes the unary RPC with its status. A client cancel or deadline
// cancels the CallContext handed to `work`. Sets x-request-id initial metadata; `work` may add
// more through the context before returning, and fills in `info` (tenant, model, driver) for the
// access log and metrics, which `observer` (may be null) records when the call ends.
grpc::ServerUnaryReactor* RunUnary(
    grpc::CallbackServerContext* ctx, WorkerPool* pool, Observer* observer, const char* method,
    std::function<grpc::Status(const backends::CallContext&, CallInfo* info)> work);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_CALL_UTIL_H_
