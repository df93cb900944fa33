// The ONE table from HTTP answers and transport failures to absl::Status for every HTTP driver.
//
//   HTTP answer                               code                 note
//   2xx                                       OK                   unless the body is an error:
//   2xx {"error":"Unexpected endpoint ..."}   UNIMPLEMENTED        LM Studio's answer to unknown
//                                                                  paths (too old for this API)
//   2xx other {"error":...}                   by the error (below), else UNKNOWN
//   400                                       INVALID_ARGUMENT
//   401                                       UNAUTHENTICATED
//   403                                       PERMISSION_DENIED
//   404                                       NOT_FOUND
//   405, 501                                  UNIMPLEMENTED
//   408                                       UNAVAILABLE          host gave up waiting for us
//   409                                       ABORTED
//   429                                       RESOURCE_EXHAUSTED
//   499                                       CANCELLED
//   other 4xx                                 FAILED_PRECONDITION
//   5xx (but 501)                             UNAVAILABLE          retryable when idempotent
//   1xx, 3xx                                  UNKNOWN              (redirects are not followed)
//
//   LM Studio error details refine the code, whatever the HTTP status:
//   code/type "model_not_found", "Invalid model identifier ...",
//   "No models loaded ..." (JIT off),
//   "... not found" about a model or instance                    NOT_FOUND (as sdk_ws reports a
//                                                                missing model: the request
//                                                                path re-syncs and loads)
//   code "invalid_api_key"                                       UNAUTHENTICATED
//   "The model was unloaded during the prediction"               UNAVAILABLE
//   "... is being loaded or unloaded" (the JIT window)           UNAVAILABLE; nothing ran, so
//                                                                retried whatever the method
//
//   transport failure                         code
//   refused, unresolvable, connect timeout    UNAVAILABLE          retryable when idempotent
//   reset, empty reply, partial body          UNAVAILABLE          retryable when idempotent
//   TLS handshake                             UNAVAILABLE
//   TLS certificate                           FAILED_PRECONDITION
//   malformed URL, unsupported scheme         INVALID_ARGUMENT
//   aborted by us                             CANCELLED
//
// Error bodies come in two shapes, {"error":"text"} and {"error":{"message":...,"type":...,
// "code":...}}; the message always names the host and the request, e.g.
//   LM Studio at http://127.0.0.1:1234: Invalid model identifier "x". ... (HTTP 400 on POST
//   /v1/chat/completions)
//
// Statuses built here carry a payload telling the retry policy (retry.h) what failed: the HTTP
// status (HttpStatusOf) or the fact that the transport failed (IsTransportFailure).
// Stateless, thread-safe.
#ifndef LMGATE_BACKENDS_HTTP_STATUS_H_
#define LMGATE_BACKENDS_HTTP_STATUS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lmgate::backends::http {

// Which request an answer belongs to, for messages.
struct RequestInfo {
  absl::string_view base_url;  // "http://127.0.0.1:1234"
  absl::string_view method;    // "POST"
  absl::string_view path;      // "/v1/chat/completions"
};

// An error object of LM Studio, from either body shape.
struct LmStudioError {
  std::string message;
  std::string type;
  std::string code;
  std::string param;
};

// The error carried by `body`, if `body` is a JSON object with an "error" member (a string or
// an object). nullopt otherwise.
std::optional<LmStudioError> ParseLmStudioError(absl::string_view body);

// True for LM Studio's answer to unknown paths ("Unexpected endpoint or method. (GET /x)").
bool IsUnexpectedEndpoint(const LmStudioError& error);

// The status of a complete HTTP answer (see the table). OK for a 2xx without an error body.
absl::Status StatusFromHttpResponse(int http_status, absl::string_view body,
                                    const RequestInfo& request);

// The status of an error LM Studio reported inside a 2xx stream (`data: {"error":...}`, REST v1
// `event: error`). `fallback` is used when the error names no known cause.
absl::Status StatusFromStreamError(const LmStudioError& error, const RequestInfo& request,
                                   absl::StatusCode fallback = absl::StatusCode::kUnknown);

// The status of a failed transfer. `curl_code` is a CURLcode, `detail` curl's error buffer
// (may be empty), `connected` whether the TCP connection had been established.
absl::Status StatusFromTransport(int curl_code, absl::string_view detail, bool connected,
                                 const RequestInfo& request);

// The HTTP status recorded in a status from StatusFromHttpResponse/StatusFromStreamError
// (the latter records 200). nullopt for other statuses.
std::optional<int> HttpStatusOf(const absl::Status& status);
// True for statuses from StatusFromTransport.
bool IsTransportFailure(const absl::Status& status);
// True when the host answered that it did not run the request at all (the JIT window), so
// sending it again is safe even for a POST.
bool HostDidNotRun(const absl::Status& status);

// The code of the table's HTTP column alone (no body).
absl::StatusCode CodeForHttpStatus(int http_status);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_STATUS_H_
