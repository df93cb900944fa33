// The OpenAI-compatible HTTP ingress (config http_listen; README "OpenAI-compatible HTTP"): the
// routes of routes.cc on an HttpServer, serving on the gRPC API's core (services::CoreRefs) —
// the same keys, quotas, fair queues, model residency, drivers, access log and metrics.
//
// A services::FrontEnd: LmgateServer creates it (IngressFactory) after its own services and
// stops it in its order: StopAccepting() with the gRPC listener, Stop(deadline) after the gRPC
// calls, by the same grace deadline; then what still runs is closed (its upstream predictions
// cancelled) and the I/O threads are joined. Thread-safe.
#ifndef LMGATE_SERVICES_HTTP_INGRESS_INGRESS_H_
#define LMGATE_SERVICES_HTTP_INGRESS_INGRESS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "services/http_ingress/call.h"
#include "services/http_ingress/http_server.h"
#include "services/http_ingress/router.h"
#include "services/server.h"

namespace lmgate::http_ingress {

struct IngressOptions {
  HttpServerOptions server;
};

class Ingress : public services::FrontEnd {
 public:
  static absl::StatusOr<std::unique_ptr<Ingress>> Create(IngressOptions options,
                                                         services::CoreRefs core);
  ~Ingress() override;
  int port() const { return server_->port(); }
  HttpServer& server() { return *server_; }

  void StopAccepting() override;
  void Stop(absl::Time deadline) override;

 private:
  Ingress() = default;
  RouteEnv env_;
  Router router_;
  std::unique_ptr<HttpServer> server_;  // declared last: stopped before env_ and router_ go
};

// For ServerOptions::front_ends.
services::FrontEndFactory IngressFactory(IngressOptions options);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_INGRESS_H_
