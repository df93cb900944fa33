// A gRPC server interceptor for requests gRPC could not parse.
//
// When protobuf rejects a request's bytes (the usual cause: a proto3 string field that is not
// valid UTF-8), gRPC's callback handlers answer UNIMPLEMENTED with an empty message, which
// reads as "this server lacks the method". This interceptor notices that the request message
// never arrived and turns that answer into INVALID_ARGUMENT naming the method and the likely
// cause. Nothing else is touched, and nothing reached the gateway core.
//
// Thread-safe factory; one interceptor per call (gRPC's contract).
#ifndef LMGATE_SERVICES_PARSE_ERRORS_H_
#define LMGATE_SERVICES_PARSE_ERRORS_H_

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace lmgate::services {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseErrorInterceptorFactory();

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_PARSE_ERRORS_H_
