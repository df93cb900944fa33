// The one mapping of lmgate's absl::Status to an HTTP answer in OpenAI's error shape
// {"error":{"message","type","param","code"}} (the HTTP counterpart of services/status.h).
// Thread-safe (pure functions).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_ERRORS_H_
#define LMGATE_SERVICES_HTTP_INGRESS_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/http_ingress/http_server.h"

namespace lmgate::http_ingress {

// INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE 400; UNAUTHENTICATED 401;
// PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS, ABORTED 409; RESOURCE_EXHAUSTED 429;
// CANCELLED 499; UNIMPLEMENTED 501; UNAVAILABLE 503; DEADLINE_EXCEEDED 504; everything else 500.
int HttpStatusFor(absl::StatusCode code);

// What the error says about itself besides the status' message.
struct ErrorDetail {
  std::string param;  // the request field at fault, "" = null
  std::string code;   // OpenAI's `code` ("model_not_found"), "" = derived from the status
};

// The JSON text of the error object for `status` (not OK).
std::string ErrorJson(const absl::Status& status, const ErrorDetail& detail = {});

// The whole answer: status, error body, and for RESOURCE_EXHAUSTED with a retry hint
// (admission/retry_after.h) the `Retry-After` (whole seconds, rounded up) and `retry-after-ms`
// headers. A model lookup's NOT_FOUND passes detail.code "model_not_found".
HttpResponse ErrorResponse(const absl::Status& status, const ErrorDetail& detail = {});

// An INVALID_ARGUMENT naming `param` (also as the error's param: see ParamOf).
absl::Status InvalidField(absl::string_view param, absl::string_view why);
// The param an InvalidField() status names ("" for other statuses).
std::string ParamOf(const absl::Status& status);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_ERRORS_H_
