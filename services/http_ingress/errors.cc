#include "services/http_ingress/errors.h"

#include <nlohmann/json.hpp>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "services/admission/retry_after.h"

namespace lmgate::http_ingress {
namespace {

constexpr char kParamPayload[] = "type.lmgate.dev/http-param";

const char* TypeFor(int http_status) {
  switch (http_status) {
    case 400:
    case 404:
    case 409:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 499:
      return "cancelled";
    case 501:
      return "not_implemented";
    case 503:
      return "service_unavailable";
    case 504:
      return "timeout";
    default:
      return "server_error";
  }
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  using C = absl::StatusCode;
  switch (code) {
    case C::kOk:
      return 200;
    case C::kInvalidArgument:
    case C::kFailedPrecondition:
    case C::kOutOfRange:
      return 400;
    case C::kUnauthenticated:
      return 401;
    case C::kPermissionDenied:
      return 403;
    case C::kNotFound:
      return 404;
    case C::kAlreadyExists:
    case C::kAborted:
      return 409;
    case C::kResourceExhausted:
      return 429;
    case C::kCancelled:
      return 499;
    case C::kUnimplemented:
      return 501;
    case C::kUnavailable:
      return 503;
    case C::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorJson(const absl::Status& status, const ErrorDetail& detail) {
  const int http = HttpStatusFor(status.code());
  nlohmann::json err = {{"message", std::string(status.message())},
                        {"type", TypeFor(http)},
                        {"param", nullptr},
                        {"code", nullptr}};
  std::string param = detail.param.empty() ? ParamOf(status) : detail.param;
  if (!param.empty()) err["param"] = param;
  if (!detail.code.empty()) {
    err["code"] = detail.code;
  } else {
    std::string code = absl::StatusCodeToString(status.code());
    for (char& c : code) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    err["code"] = code;  // "invalid_argument", "resource_exhausted", ...
  }
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

HttpResponse ErrorResponse(const absl::Status& status, const ErrorDetail& detail) {
  HttpResponse r;
  r.status = HttpStatusFor(status.code());
  r.body = ErrorJson(status, detail);
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    if (auto ms = admission::RetryAfterMs(status)) {
      r.headers.emplace_back("Retry-After", std::to_string((*ms + 999) / 1000));
      r.headers.emplace_back("retry-after-ms", std::to_string(*ms));
    }
  }
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return r;
}

absl::Status InvalidField(absl::string_view param, absl::string_view why) {
  absl::Status st = absl::InvalidArgumentError(absl::StrCat(param, ": ", why));
  st.SetPayload(kParamPayload, absl::Cord(param));
  return st;
}

std::string ParamOf(const absl::Status& status) {
  auto p = status.GetPayload(kParamPayload);
  return p ? std::string(*p) : "";
}

}  // namespace lmgate::http_ingress
