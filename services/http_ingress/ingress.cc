#include "services/http_ingress/ingress.h"

#include <spdlog/spdlog.h>

#include "services/http_ingress/routes.h"

namespace lmgate::http_ingress {

absl::StatusOr<std::unique_ptr<Ingress>> Ingress::Create(IngressOptions options,
                                                         services::CoreRefs core) {
  std::unique_ptr<Ingress> in(new Ingress());
  in->env_.core = core;
  if (auto st = RegisterRoutes(&in->env_, in->router_); !st.ok()) return st;
  Router* router = &in->router_;
  auto server = HttpServer::Create(options.server, [router](std::shared_ptr<Exchange> ex) {
    router->Dispatch(std::move(ex));
  });
  if (!server.ok()) return server.status();
  in->server_ = *std::move(server);
  in->server_->Start();
  return in;
}

Ingress::~Ingress() {
  if (server_) server_->Stop(absl::Now());
}

void Ingress::StopAccepting() { server_->StopAccepting(); }

void Ingress::Stop(absl::Time deadline) {
  if (server_->active() > 0) {
    spdlog::info("http ingress: {} calls still running, waiting until the grace ends",
                 server_->active());
  }
  server_->Stop(deadline);
}

services::FrontEndFactory IngressFactory(IngressOptions options) {
  return [options](services::CoreRefs core)
             -> absl::StatusOr<std::unique_ptr<services::FrontEnd>> {
    auto in = Ingress::Create(options, core);
    if (!in.ok()) return in.status();
    return std::unique_ptr<services::FrontEnd>(*std::move(in));
  };
}

}  // namespace lmgate::http_ingress
