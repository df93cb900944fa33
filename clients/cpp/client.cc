#include "clients/cpp/client.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace lmgate::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                                 "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                 "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? kNames[i] : "?";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const Options& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.tls || !options.ca_file.empty() || !options.cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      auto ca = ReadFile(options.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!options.cert_file.empty()) {
      auto cert = ReadFile(options.cert_file);
      auto key = ReadFile(options.key_file);
      if (!cert.ok()) return cert.status();
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  std::unique_ptr<Client> c(new Client());
  c->options_ = options;
  grpc::ChannelArguments args;
  const int backoff_ms = static_cast<int>(options.max_reconnect_backoff.count());
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff_ms);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(backoff_ms, 200));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(backoff_ms, 200));
  c->channel_ = grpc::CreateCustomChannel(options.address, creds, args);
  if (!c->channel_->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
    const bool tls = options.tls || !options.ca_file.empty() || !options.cert_file.empty();
    return absl::UnavailableError(absl::StrCat(
        "cannot reach lmgate at ", options.address,
        " (is it running? start it with `bazel run //services:lmgate`, or pass --addr",
        tls ? "; with TLS: does its certificate verify with --ca, and does it serve TLS?)"
            : "; if it serves TLS, pass --tls or --ca)"));
  }
  c->inference_ = v1::Inference::NewStub(c->channel_);
  c->models_ = v1::ModelManager::NewStub(c->channel_);
  return c;
}

void Client::Prepare(grpc::ClientContext* ctx) const {
  if (!options_.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.api_key);
}

std::string Client::Describe(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
    return absl::StrCat("lost the connection to lmgate at ", options_.address,
                        " (is it still running?): ", status.error_message());
  }
  return client::Describe(status, options_);
}

std::string Describe(const grpc::Status& status, const Options& options) {
  std::string out = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&out, " (lmgate at ", options.address, ")");
  } else if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    absl::StrAppend(&out, " (pass --key or set LMGATE_API_KEY)");
  }
  return out;
}

}  // namespace lmgate::client
