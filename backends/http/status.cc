#include "backends/http/status.h"

#include <curl/curl.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "backends/http/json.h"

namespace lmgate::backends::http {
namespace {

constexpr char kHttpStatusPayload[] = "type.lmgate.dev/http_status";
constexpr char kTransportPayload[] = "type.lmgate.dev/transport_failure";
constexpr char kNotRunPayload[] = "type.lmgate.dev/not_run";

// LM Studio's answer while a model is loading or unloading (the "JIT window"): the model exists
// and nothing ran, so the request may be sent again whatever its method.
bool IsModelInTransition(const LmStudioError& e) {
  return absl::StrContains(absl::AsciiStrToLower(e.message), "being loaded or unloaded");
}

std::string Where(const RequestInfo& r) { return absl::StrCat(r.method, " ", r.path); }

// The code LM Studio's error details imply, if any.
std::optional<absl::StatusCode> CodeFromError(const LmStudioError& e) {
  std::string lower = absl::AsciiStrToLower(e.message);
  if (IsModelInTransition(e)) return absl::StatusCode::kUnavailable;  // before "not found" codes
  // "No models loaded" (JIT off, nothing loaded) is the same news as sdk_ws's "not loaded": the
  // instance lmgate routed to is gone, so the request path re-syncs and loads (NOT_FOUND).
  if (e.code == "model_not_found" || e.type == "model_not_found" ||
      absl::StartsWith(e.message, "Invalid model identifier") ||
      absl::StrContains(e.message, "No models loaded") ||
      (absl::StrContains(lower, "not found") &&
       (absl::StrContains(lower, "model") || absl::StrContains(lower, "instance")))) {
    return absl::StatusCode::kNotFound;
  }
  if (e.code == "invalid_api_key" || e.type == "invalid_api_key") {
    return absl::StatusCode::kUnauthenticated;
  }
  if (absl::StrContains(lower, "model was unloaded") || lower == "model unloaded") {
    return absl::StatusCode::kUnavailable;  // another attempt reloads it
  }
  return std::nullopt;
}

absl::Status WithHttpStatus(absl::Status status, int http_status) {
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(http_status)));
  return status;
}

absl::Status UnexpectedEndpoint(const LmStudioError& e, const RequestInfo& r) {
  return absl::UnimplementedError(absl::StrCat(
      "LM Studio at ", r.base_url, " does not serve ", Where(r), " (it answered \"", e.message,
      "\"); the host is probably too old for this API"));
}

}  // namespace

std::optional<LmStudioError> ParseLmStudioError(absl::string_view body) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  if (trimmed.empty() || trimmed.front() != '{') return std::nullopt;
  auto json = ParseJson(trimmed, "error body");
  if (!json.ok()) return std::nullopt;
  const Json* err = JsonMember(*json, "error");
  if (err == nullptr) return std::nullopt;
  LmStudioError out;
  if (err->is_string()) {
    out.message = err->get<std::string>();
  } else if (err->is_object()) {
    out.message = JsonString(*err, "message");
    out.type = JsonString(*err, "type");
    out.code = JsonString(*err, "code");
    out.param = JsonString(*err, "param");
    if (out.message.empty()) out.message = err->dump();
  } else {
    out.message = err->dump();
  }
  return out;
}

bool IsUnexpectedEndpoint(const LmStudioError& error) {
  return absl::StartsWith(error.message, "Unexpected endpoint");
}

absl::StatusCode CodeForHttpStatus(int s) {
  if (s >= 200 && s < 300) return absl::StatusCode::kOk;
  switch (s) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 408:
      return absl::StatusCode::kUnavailable;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
  }
  if (s >= 400 && s < 500) return absl::StatusCode::kFailedPrecondition;
  if (s >= 500 && s < 600) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

absl::Status StatusFromHttpResponse(int http_status, absl::string_view body,
                                    const RequestInfo& r) {
  std::optional<LmStudioError> error = ParseLmStudioError(body);
  bool success = http_status >= 200 && http_status < 300;
  if (success && !error) return absl::OkStatus();
  if (error && IsUnexpectedEndpoint(*error)) {
    return WithHttpStatus(UnexpectedEndpoint(*error, r), http_status);
  }
  absl::StatusCode code = success ? absl::StatusCode::kUnknown : CodeForHttpStatus(http_status);
  std::string message;
  if (error) {
    if (auto refined = CodeFromError(*error)) code = *refined;
    message = error->message;
  } else if (!absl::StripAsciiWhitespace(body).empty()) {
    message = Snippet(absl::StripAsciiWhitespace(body));
  } else if (http_status >= 300 && http_status < 400) {
    message = "unexpected redirect (is the base URL right?)";
  } else {
    message = "empty answer";
  }
  absl::Status status =
      WithHttpStatus(absl::Status(code, absl::StrCat("LM Studio at ", r.base_url, ": ", message,
                                                     " (HTTP ", http_status, " on ", Where(r),
                                                     ")")),
                     http_status);
  if (!success && error && IsModelInTransition(*error)) status.SetPayload(kNotRunPayload, absl::Cord("1"));
  return status;
}

absl::Status StatusFromStreamError(const LmStudioError& error, const RequestInfo& r,
                                   absl::StatusCode fallback) {
  if (IsUnexpectedEndpoint(error)) return WithHttpStatus(UnexpectedEndpoint(error, r), 200);
  absl::StatusCode code = CodeFromError(error).value_or(fallback);
  return WithHttpStatus(
      absl::Status(code, absl::StrCat("LM Studio at ", r.base_url, ": ", error.message,
                                      " (error inside the stream of ", Where(r), ")")),
      200);
}

absl::Status StatusFromTransport(int curl_code, absl::string_view detail, bool connected,
                                 const RequestInfo& r) {
  auto code = static_cast<CURLcode>(curl_code);
  std::string why(detail.empty() ? curl_easy_strerror(code) : detail);
  absl::StatusCode status_code;
  std::string text;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      status_code = absl::StatusCode::kUnavailable;
      text = absl::StrCat("cannot connect to LM Studio at ", r.base_url, " (", why,
                          "): is LM Studio running with its server on (lms server start)?");
      break;
    case CURLE_OPERATION_TIMEDOUT:
      status_code = absl::StatusCode::kUnavailable;
      text = connected ? absl::StrCat("LM Studio at ", r.base_url, " timed out (", why, ")")
                       : absl::StrCat("cannot connect to LM Studio at ", r.base_url, " (", why,
                                      ")");
      break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      status_code = absl::StatusCode::kUnavailable;
      text = absl::StrCat("connection to LM Studio at ", r.base_url, " lost (", why, ")");
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      status_code = absl::StatusCode::kFailedPrecondition;
      text = absl::StrCat("TLS to LM Studio at ", r.base_url, " failed (", why, ")");
      break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      status_code = absl::StatusCode::kInvalidArgument;
      text = absl::StrCat("bad LM Studio URL ", r.base_url, " (", why, ")");
      break;
    case CURLE_ABORTED_BY_CALLBACK:
      status_code = absl::StatusCode::kCancelled;
      text = absl::StrCat("request to LM Studio at ", r.base_url, " cancelled");
      break;
    case CURLE_OUT_OF_MEMORY:
      status_code = absl::StatusCode::kResourceExhausted;
      text = absl::StrCat("out of memory talking to LM Studio at ", r.base_url);
      break;
    default:
      status_code = absl::StatusCode::kUnknown;
      text = absl::StrCat("request to LM Studio at ", r.base_url, " failed (", why, ")");
  }
  absl::Status status(status_code, absl::StrCat(text, " [", Where(r), "]"));
  status.SetPayload(kTransportPayload, absl::Cord(absl::StrCat(curl_code)));
  return status;
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  int value = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &value)) return std::nullopt;
  return value;
}

bool IsTransportFailure(const absl::Status& status) {
  return status.GetPayload(kTransportPayload).has_value();
}

bool HostDidNotRun(const absl::Status& status) {
  return status.GetPayload(kNotRunPayload).has_value();
}

}  // namespace lmgate::backends::http
