#include "backends/rest/rest_driver.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/http/log.h"
#include "backends/http/openai_calls.h"
#include "backends/http/status.h"
#include "backends/log.h"
#include "backends/rest/rest_wire.h"

namespace lmgate::backends::rest {
namespace {

constexpr char kV0Models[] = "/api/v0/models";
constexpr char kV1Models[] = "/api/v1/models";

// An answer meaning "this host does not serve that path".
bool IsMissingEndpoint(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnimplemented ||
         (s.code() == absl::StatusCode::kNotFound && http::HttpStatusOf(s) == 404 &&
          !absl::StrContains(s.message(), "model"));
}

}  // namespace

RestDriver::RestDriver(Options options, std::unique_ptr<http::HttpClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

absl::StatusOr<std::unique_ptr<RestDriver>> RestDriver::Create(Options options) {
  auto client = http::CreateHostClient(options.host);
  if (!client.ok()) return client.status();
  return std::unique_ptr<RestDriver>(new RestDriver(std::move(options), std::move(*client)));
}

Capabilities RestDriver::capabilities() const {
  Capabilities c;
  c.list_models = true;
  c.load = true;
  c.unload = true;
  c.chat = true;
  c.complete = true;
  c.embed = true;
  c.inference_stats = true;
  c.tool_calls = true;
  c.structured_output = true;
  return c;
}

absl::Status RestDriver::Probe(const CallContext& ctx) {
  return probe_cache_.Get([&] {
    http::HttpRequest request{"GET", kV0Models};
    request.timeout = options_.host.connect_timeout + absl::Seconds(2);
    absl::Status status = client_->Do(ctx, request).status();
    if (IsMissingEndpoint(status)) {
      request.path = kV1Models;
      status = client_->Do(ctx, request).status();
    }
    return status;
  });
}

void RestDriver::RecordV1(bool present) {
  absl::MutexLock lock(&mu_);
  if (has_v1_ != present) {
    http::HttpLog().info("LM Studio at {} {} REST v1", client_->base_url(),
                         present ? "serves" : "does not serve");
  }
  has_v1_ = present;
  v1_checked_ = absl::Now();
}

absl::StatusOr<std::optional<HostModels>> RestDriver::FetchV1Models(const CallContext& ctx) {
  absl::StatusOr<http::HttpResponse> response = client_->Do(ctx, {"GET", kV1Models});
  if (!response.ok()) {
    if (IsMissingEndpoint(response.status())) {
      RecordV1(false);
      return std::optional<HostModels>();
    }
    return response.status();
  }
  RecordV1(true);
  absl::StatusOr<HostModels> models = ParseV1Models(response->body);
  if (!models.ok()) return models.status();
  return std::optional<HostModels>(std::move(*models));
}

absl::StatusOr<bool> RestDriver::HasV1(const CallContext& ctx) {
  {
    absl::MutexLock lock(&mu_);
    if (has_v1_ && (*has_v1_ || absl::Now() - v1_checked_ < options_.v1_recheck)) return *has_v1_;
  }
  auto v1 = FetchV1Models(ctx);
  if (!v1.ok()) return v1.status();
  return v1->has_value();
}

absl::Status RestDriver::V1Missing(absl::string_view operation) const {
  return absl::UnimplementedError(absl::StrCat(
      "LM Studio at ", client_->base_url(), " has no REST v1 API (LM Studio older than 0.4), so "
      "the rest driver cannot ", operation, " there; use the sdk_ws or cli driver"));
}

absl::StatusOr<HostModels> RestDriver::ListModels(const CallContext& ctx) {
  absl::StatusOr<http::HttpResponse> v0 = client_->Do(ctx, {"GET", kV0Models});
  if (!v0.ok() && !IsMissingEndpoint(v0.status())) return v0.status();
  bool try_v1;
  {
    absl::MutexLock lock(&mu_);
    try_v1 = !has_v1_ || *has_v1_ || absl::Now() - v1_checked_ >= options_.v1_recheck;
  }
  std::optional<HostModels> v1_models;
  if (try_v1 || !v0.ok()) {
    auto v1 = FetchV1Models(ctx);
    if (v1.ok()) {
      v1_models = std::move(*v1);
    } else if (!v0.ok()) {
      return v1.status();
    } else {
      // v0 answered: list from it rather than fail on the richer extra.
      RequestLog(http::HttpLog(), ctx.request_id)
          .debug("/api/v1/models failed, listing from v0: {}", v1.status().ToString());
    }
  }
  if (!v0.ok()) {
    if (!v1_models) return v0.status();  // neither API: the v0 answer says why
    return std::move(*v1_models);
  }
  absl::StatusOr<HostModels> v0_models = ParseV0Models(v0->body);
  if (!v0_models.ok()) return v0_models.status();
  if (!v1_models) return v0_models;
  return MergeModels(std::move(*v0_models), std::move(*v1_models));
}

absl::StatusOr<http::HttpResponse> RestDriver::PostV1(const CallContext& ctx,
                                                      const std::string& path, std::string body,
                                                      absl::string_view operation) {
  absl::StatusOr<bool> has_v1 = HasV1(ctx);
  if (!has_v1.ok()) return has_v1.status();
  if (!*has_v1) return V1Missing(operation);
  http::HttpRequest request{"POST", path, std::move(body)};
  request.timeout = options_.host.load_timeout;
  absl::StatusOr<http::HttpResponse> response = client_->Do(ctx, request);
  if (!response.ok() && response.status().code() == absl::StatusCode::kUnimplemented) {
    RecordV1(false);
    return V1Missing(operation);
  }
  return response;
}

absl::StatusOr<InstanceInfo> RestDriver::Load(const CallContext& ctx, const LoadParams& params,
                                              const LoadProgressFn&) {
  absl::StatusOr<std::string> body = BuildLoadBody(params);
  if (!body.ok()) return body.status();
  RequestLog(http::HttpLog(), ctx.request_id).info("loading {} through REST v1", params.model_key);
  auto response = PostV1(ctx, "/api/v1/models/load", std::move(*body), "load models");
  if (!response.ok()) {
    const absl::Status& s = response.status();
    // The host answered and failed the load: its reason, not "retry may work".
    if (http::HttpStatusOf(s) && (s.code() == absl::StatusCode::kUnavailable ||
                                  s.code() == absl::StatusCode::kUnknown)) {
      return absl::AbortedError(absl::StrCat("loading ", params.model_key, " failed: ",
                                             s.message()));
    }
    return s;
  }
  return ParseLoadResponse(response->body, params);
}

absl::Status RestDriver::Unload(const CallContext& ctx, const std::string& identifier) {
  if (identifier.empty()) return absl::InvalidArgumentError("no instance identifier to unload");
  RequestLog(http::HttpLog(), ctx.request_id).info("unloading {} through REST v1", identifier);
  return PostV1(ctx, "/api/v1/models/unload", BuildUnloadBody(identifier), "unload models")
      .status();
}

std::unique_ptr<GenerateHandle> RestDriver::Generate(const CallContext& ctx,
                                                     const GenerateRequest& request,
                                                     std::shared_ptr<GenerateObserver> observer) {
  http::GenerateStreamOptions options;
  options.chat_path = "/api/v0/chat/completions";
  options.completion_path = "/api/v0/completions";
  options.use_upstream_stats = true;
  return http::StartGenerateStream(*client_, ctx, request, options, std::move(observer));
}

absl::StatusOr<EmbedResult> RestDriver::Embed(const CallContext& ctx, const std::string& model,
                                              const std::vector<std::string>& inputs) {
  return http::DoEmbeddings(*client_, ctx, "/api/v0/embeddings", model, inputs);
}

}  // namespace lmgate::backends::rest
