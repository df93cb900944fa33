#include "services/http_ingress/router.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/http_ingress/errors.h"

namespace lmgate::http_ingress {

absl::Status Router::Add(std::string method, std::string pattern, RouteHandler handler) {
  Route r;
  r.prefix = absl::EndsWith(pattern, "/*");
  if (r.prefix) pattern.resize(pattern.size() - 1);  // keeps the '/'
  for (const auto& e : routes_) {
    if (e.method == method && e.pattern == pattern && e.prefix == r.prefix) {
      return absl::InvalidArgumentError(absl::StrCat("route ", method, " ", pattern,
                                                     " is registered twice"));
    }
  }
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
  return absl::OkStatus();
}

const Router::Route* Router::Find(const std::string& method, const std::string& path,
                                  std::string* param, std::string* allowed) const {
  // "/chat/completions" is "/v1/chat/completions".
  const std::string full = absl::StartsWith(path, "/v1/") ? path : absl::StrCat("/v1", path);
  const Route* found = nullptr;
  for (const auto& r : routes_) {
    std::string p;
    bool match = false;
    if (r.prefix) {
      match = full.size() > r.pattern.size() && absl::StartsWith(full, r.pattern);
      if (match) p = full.substr(r.pattern.size());
    } else {
      match = full == r.pattern;
    }
    if (!match) continue;
    if (r.method == method) {
      // An exact route wins over a prefix one.
      if (found == nullptr || (found->prefix && !r.prefix)) {
        found = &r;
        *param = p;
      }
    } else if (allowed != nullptr) {
      if (!allowed->empty()) allowed->append(", ");
      allowed->append(r.method);
    }
  }
  return found;
}

bool Router::Match(const std::string& method, const std::string& path, std::string* pattern,
                   std::string* param) const {
  const Route* r = Find(method, path, param, nullptr);
  if (r == nullptr) return false;
  *pattern = r->prefix ? r->pattern + "*" : r->pattern;
  return true;
}

void Router::Dispatch(std::shared_ptr<Exchange> exchange) const {
  const HttpRequest& req = exchange->request();
  std::string param, allowed;
  const Route* r = Find(req.method, req.path, &param, &allowed);
  if (r != nullptr) return r->handler(std::move(exchange), param);
  if (!allowed.empty()) {
    HttpResponse resp = ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
        req.method, " is not allowed on ", req.path, "; use ", allowed)));
    resp.status = 405;
    resp.headers.emplace_back("Allow", allowed);
    return exchange->Respond(std::move(resp));
  }
  exchange->Respond(ErrorResponse(
      absl::NotFoundError(absl::StrCat("no route ", req.method, " ", req.path,
                                       " (lmgate serves /v1/models, /v1/chat/completions, "
                                       "/v1/completions, /v1/embeddings)")),
      {"", "unknown_url"}));
}

}  // namespace lmgate::http_ingress
