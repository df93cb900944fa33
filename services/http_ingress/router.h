// Router: (method, path pattern) → handler, the one place the ingress's routes are listed
// (routes.cc). Every "/v1/..." route also answers without the "/v1" prefix, as LM Studio and
// other OpenAI-compatible gateways do. Unknown paths get 404, a known path with another method
// 405 (with Allow), both in OpenAI's error shape. Add() before serving; Dispatch() is then
// thread-safe (the table is immutable).
#ifndef LMGATE_SERVICES_HTTP_INGRESS_ROUTER_H_
#define LMGATE_SERVICES_HTTP_INGRESS_ROUTER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/http_ingress/http_server.h"

namespace lmgate::http_ingress {

// `param` is the path's rest after a pattern's trailing "/*" (may contain '/'), "" otherwise.
using RouteHandler = std::function<void(std::shared_ptr<Exchange> exchange,
                                        const std::string& param)>;

class Router {
 public:
  // `pattern`: an exact path ("/v1/models"), or a prefix ending in "/*" whose rest (non-empty)
  // becomes the param ("/v1/models/*"). INVALID_ARGUMENT for a duplicate (method, pattern).
  absl::Status Add(std::string method, std::string pattern, RouteHandler handler);
  void Dispatch(std::shared_ptr<Exchange> exchange) const;

  // The route of (method, path), for tests: its pattern and param; false if none.
  bool Match(const std::string& method, const std::string& path, std::string* pattern,
             std::string* param) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    bool prefix = false;
    RouteHandler handler;
  };
  const Route* Find(const std::string& method, const std::string& path, std::string* param,
                    std::string* allowed) const;
  std::vector<Route> routes_;
};

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_ROUTER_H_
