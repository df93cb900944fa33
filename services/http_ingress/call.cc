#include "services/http_ingress/call.h"

#include "absl/time/clock.h"
#include "services/call_util.h"

namespace lmgate::http_ingress {

std::optional<HttpCall> HttpCall::Begin(const RouteEnv& env, std::shared_ptr<Exchange> exchange,
                                        const std::string& method, services::Role role) {
  const HttpRequest& req = exchange->request();
  HttpCall call;
  call.exchange = std::move(exchange);
  const std::string id = services::RequestIdFrom(req.Header(services::kRequestIdHeader));
  const std::string traceparent = services::TraceparentFrom(req.Header("traceparent"));
  call.info.method = method;
  call.info.request_id = id;
  call.info.trace_id = services::TraceIdOf(traceparent);
  call.info.peer = req.peer;
  call.ctx.cancel = std::make_shared<backends::CancelToken>();
  call.ctx.request_id = id;
  call.ctx.traceparent = traceparent;
  auto tenant = services::AuthorizeHeaders(env.core.identity->Get().get(), req.peer,
                                           req.Header("authorization"), req.Header("x-api-key"),
                                           role);
  if (!tenant.ok()) {
    call.Fail(env, tenant.status());
    return std::nullopt;
  }
  call.tenant = *tenant;
  call.info.tenant = (*tenant)->name;
  return call;
}

Headers HttpCall::BaseHeaders() const {
  return {{services::kRequestIdHeader, info.request_id}};
}

void HttpCall::RespondJson(const RouteEnv& env, std::string json, int status) {
  if (env.core.observer != nullptr) env.core.observer->Unary(info, absl::OkStatus());
  HttpResponse r;
  r.status = status;
  r.headers = BaseHeaders();
  r.body = std::move(json);
  exchange->Respond(std::move(r));
}

void HttpCall::Fail(const RouteEnv& env, const absl::Status& status, const ErrorDetail& detail) {
  if (env.core.observer != nullptr) env.core.observer->Unary(info, status);
  HttpResponse r = ErrorResponse(status, detail);
  for (auto& h : BaseHeaders()) r.headers.push_back(std::move(h));
  exchange->Respond(std::move(r));
}

int64_t UnixNow() { return absl::ToUnixSeconds(absl::Now()); }

}  // namespace lmgate::http_ingress
