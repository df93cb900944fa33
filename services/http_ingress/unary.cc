// GET /v1/models, GET /v1/models/{id}, POST /v1/embeddings: blocking gateway calls, run on the
// worker pool like gRPC's unary RPCs; a client that goes away cancels the call's context.
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/convert.h"
#include "services/http_ingress/openai_request.h"
#include "services/http_ingress/openai_response.h"
#include "services/http_ingress/routes.h"
#include "services/worker_pool.h"

namespace lmgate::http_ingress {
namespace {

// Runs `work` on the pool with the call; the exchange's close cancels it.
void OnPool(const RouteEnv& env, HttpCall call, std::function<void(HttpCall&)> work) {
  std::shared_ptr<backends::CancelToken> token = call.ctx.cancel;
  call.exchange->SetOnClose([token] { token->Cancel(); });
  env.core.pool->Schedule([call = std::move(call), work = std::move(work)]() mutable {
    work(call);
  });
}

// Percent-decoding of a path segment ("qwen%2Fqwen3-4b"); nullopt for a bad escape.
std::optional<std::string> PathDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int v = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    for (int k = 1; k <= 2; ++k) {
      const char c = s[i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return std::nullopt;
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

}  // namespace

void HandleListModels(const RouteEnv& env, std::shared_ptr<Exchange> ex) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/models");
  if (!call) return;
  OnPool(env, *std::move(call), [&env](HttpCall& c) {
    auto models = env.core.gateway->ListModels(c.ctx, /*refresh=*/false);
    if (!models.ok()) return c.Fail(env, models.status());
    std::vector<const lifecycle::ModelSnapshot*> allowed;
    for (const auto& m : *models) {
      if (c.tenant->AllowsModel(m.info.key)) allowed.push_back(&m);
    }
    c.RespondJson(env, ModelListJson(allowed));
  });
}

void HandleGetModel(const RouteEnv& env, std::shared_ptr<Exchange> ex, const std::string& id) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/models/{id}");
  if (!call) return;
  auto name = PathDecode(id);
  if (!name) return call->Fail(env, InvalidField("model", "is not a valid percent-encoded path"));
  if (auto st = services::ValidateModelName(*name, false); !st.ok()) {
    return call->Fail(env, InvalidField("model", st.message()));
  }
  call->info.model = *name;
  OnPool(env, *std::move(call), [&env, name = *name](HttpCall& c) {
    auto m = env.core.gateway->GetModel(c.ctx, name, c.tenant);
    if (!m.ok()) {
      return c.Fail(env, m.status(),
                    {"model", m.status().code() == absl::StatusCode::kNotFound ? "model_not_found"
                                                                              : ""});
    }
    c.RespondJson(env, ModelJson(*m));
  });
}

void HandleEmbeddings(const RouteEnv& env, std::shared_ptr<Exchange> ex) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/embeddings");
  if (!call) return;
  auto body = ParseEmbeddingsBody(ex->request().body, env.max_json_depth());
  if (!body.ok()) return call->Fail(env, body.status());
  if (auto st = services::ValidateEmbed(body->request); !st.ok()) {
    return call->Fail(env, absl::Status(st.code(), OpenAiFieldNames(st.message())));
  }
  const std::string model = body->request.model().empty()
                                ? env.core.gateway->options().default_embedding_model
                                : body->request.model();
  call->info.model = model;
  OnPool(env, *std::move(call), [&env, body = *std::move(body), model](HttpCall& c) {
    const auto& req = body.request;
    std::vector<std::string> inputs(req.inputs().begin(), req.inputs().end());
    std::optional<absl::Duration> ttl;
    if (req.has_ttl_hint()) ttl = absl::Seconds(req.ttl_hint().seconds());
    auto out = env.core.gateway->Embed(c.ctx, backends::DriverKind::kAuto, req.model(), inputs,
                                       ttl, c.tenant);
    if (!out.ok()) {
      return c.Fail(env, out.status(),
                    {"", out.status().code() == absl::StatusCode::kNotFound ? "model_not_found"
                                                                           : ""});
    }
    c.info.driver = out->driver;
    if (out->result.embeddings.size() != inputs.size()) {
      return c.Fail(env, absl::UnavailableError(absl::StrCat(
                             "LM Studio returned ", out->result.embeddings.size(),
                             " embeddings for ", inputs.size(), " inputs")));
    }
    c.RespondJson(env, EmbeddingsJson(out->result,
                                      out->model_key.empty() ? model : out->model_key,
                                      body.base64));
  });
}

}  // namespace lmgate::http_ingress
