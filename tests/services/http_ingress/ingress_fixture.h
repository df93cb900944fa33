// lmgate in-process over the emulator (tests/util/gateway_fixture.h) with the HTTP ingress on
// 127.0.0.1:0, and the helpers its tests share.
#ifndef LMGATE_TESTS_SERVICES_HTTP_INGRESS_INGRESS_FIXTURE_H_
#define LMGATE_TESTS_SERVICES_HTTP_INGRESS_INGRESS_FIXTURE_H_

#include <string>

#include <nlohmann/json.hpp>

#include "services/http_ingress/ingress.h"
#include "tests/services/http_ingress/http_client.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate::testutil {

class IngressFixture : public GatewayFixture {
 protected:
  void Configure(emulator::Options& emu, backends::HostConfig& host,
                 services::ServerOptions& so) override {
    http_ingress::IngressOptions io;
    io.server.listen = "127.0.0.1:0";
    io.server.max_body_bytes = 64 << 10;
    io.server.max_header_bytes = 4 << 10;
    io.server.max_headers = 32;
    io.server.read_timeout = Scaled(absl::Milliseconds(500));
    ConfigureIngress(io, so);
    so.front_ends.push_back(http_ingress::IngressFactory(io));
  }
  virtual void ConfigureIngress(http_ingress::IngressOptions& io, services::ServerOptions& so) {}

  int port() { return static_cast<http_ingress::Ingress*>(server_->front_end(0))->port(); }

  static std::string ChatBody(const std::string& model, bool stream, int max_tokens = 8) {
    nlohmann::json j = {{"model", model},
                        {"messages", {{{"role", "user"}, {"content", "Tell me about gateways."}}}},
                        {"max_tokens", max_tokens},
                        {"seed", 7}};
    if (stream) {
      j["stream"] = true;
      j["stream_options"] = {{"include_usage", true}};
    }
    return j.dump();
  }
  // The error object of an OpenAI-shaped error body (null if the body is not one).
  static nlohmann::json ErrorOf(const HttpResult& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) return nullptr;
    return j["error"];
  }
};

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_SERVICES_HTTP_INGRESS_INGRESS_FIXTURE_H_
