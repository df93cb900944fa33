// What every ingress route shares: the core it serves on (services::CoreRefs), and one call's
// start (request id, traceparent, access-log record, authorisation) and end (answer + access log
// and metrics under the method label "http:<route>"). Thread-safe.
#ifndef LMGATE_SERVICES_HTTP_INGRESS_CALL_H_
#define LMGATE_SERVICES_HTTP_INGRESS_CALL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "backends/driver.h"
#include "services/auth.h"
#include "services/http_ingress/errors.h"
#include "services/http_ingress/http_server.h"
#include "services/observe.h"
#include "services/server.h"

namespace lmgate::http_ingress {

// The core and the limits the routes validate with.
struct RouteEnv {
  services::CoreRefs core;
  int max_json_depth() const { return core.gateway->options().max_json_depth; }
};

// One HTTP call to the core. Begin() answers the failures itself (and records them).
struct HttpCall {
  std::shared_ptr<Exchange> exchange;
  services::CallInfo info;
  backends::CallContext ctx;  // a fresh cancel token; no deadline (HTTP has no grpc-timeout)
  const admission::Tenant* tenant = nullptr;

  // Request id (echoed), traceparent, access-log start under `method` ("http:/v1/models"), and
  // the caller's key/address checked for `role`; nullopt when refused (already answered).
  static std::optional<HttpCall> Begin(const RouteEnv& env, std::shared_ptr<Exchange> exchange,
                                       const std::string& method,
                                       services::Role role = services::Role::kInference);

  // Headers every answer of the call carries (x-request-id).
  Headers BaseHeaders() const;
  // A JSON answer (200 unless `status`), recorded as OK.
  void RespondJson(const RouteEnv& env, std::string json, int status = 200);
  // An error answer, recorded with its status.
  void Fail(const RouteEnv& env, const absl::Status& status, const ErrorDetail& detail = {});
};

// Unix seconds now (the `created` field).
int64_t UnixNow();

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_CALL_H_
