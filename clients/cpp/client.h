// A small C++ client for lmgate: channel setup (address, API key, TLS) and typed stubs.
//
//   lmgate::client::Options o;  o.address = "127.0.0.1:50051";
//   auto c = lmgate::client::Client::Connect(o);
//   grpc::ClientContext ctx;  c->Prepare(&ctx);
//   auto stream = c->inference().Chat(&ctx, request);
//
// Thread-safe (stubs and channel are); one ClientContext per call.
#ifndef LMGATE_CLIENTS_CPP_CLIENT_H_
#define LMGATE_CLIENTS_CPP_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"

namespace lmgate::client {

struct Options {
  std::string address = "127.0.0.1:50051";
  // lmgate API key, sent as `authorization: Bearer <key>`; empty = none.
  std::string api_key;
  // TLS: enabled when `tls` or any file is set. Files are PEM.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;  // client certificate (mTLS)
  std::string key_file;
  // Connect timeout used by Connect() to check the gateway is reachable.
  std::chrono::milliseconds connect_timeout{3000};
  // Longest wait between reconnection attempts once a connection is lost (gRPC's default is
  // 120 s; a command-line client that waits for lmgate to come back should notice within this).
  std::chrono::milliseconds max_reconnect_backoff{2000};
};

class Client {
 public:
  // UNAVAILABLE "cannot reach lmgate at ADDR (is it running? ...)" when it cannot connect in
  // time (also what a TLS mismatch looks like: the hint names --tls/--ca); INVALID_ARGUMENT
  // "cannot read FILE" when a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const Options& options);

  // Adds the API key to a call's context.
  void Prepare(grpc::ClientContext* ctx) const;

  v1::Inference::Stub& inference() { return *inference_; }
  v1::ModelManager::Stub& models() { return *models_; }
  const Options& options() const { return options_; }

  // Like client::Describe, and when a call failed UNAVAILABLE because the connection to lmgate
  // is gone (the channel is no longer READY; lmgate's own UNAVAILABLE answers, e.g. "LM Studio
  // is unreachable", keep it READY), says so: "lost the connection to lmgate at ADDR ...".
  std::string Describe(const grpc::Status& status) const;

 private:
  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::ModelManager::Stub> models_;
};

// "CODE: message" of a failed call, with a hint for the codes a person can act on:
// UNAUTHENTICATED (pass --key or set LMGATE_API_KEY), UNAVAILABLE (lmgate at ADDR).
std::string Describe(const grpc::Status& status, const Options& options);

}  // namespace lmgate::client

#endif  // LMGATE_CLIENTS_CPP_CLIENT_H_
