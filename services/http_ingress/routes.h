// The ingress's routes. RegisterRoutes() is the one place they are listed: a new endpoint is one
// Add() line there plus its handler. Handlers run on an I/O thread and never block: generations
// go through Gateway::Generate (non-blocking), unary calls to the worker pool.
#ifndef LMGATE_SERVICES_HTTP_INGRESS_ROUTES_H_
#define LMGATE_SERVICES_HTTP_INGRESS_ROUTES_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "services/http_ingress/call.h"
#include "services/http_ingress/router.h"

namespace lmgate::http_ingress {

// `env` must outlive the router's use (the Ingress owns both).
absl::Status RegisterRoutes(const RouteEnv* env, Router& router);

// POST /v1/chat/completions and POST /v1/completions (generate.cc).
void HandleChat(const RouteEnv& env, std::shared_ptr<Exchange> ex);
void HandleCompletion(const RouteEnv& env, std::shared_ptr<Exchange> ex);
// GET /v1/models, GET /v1/models/{id}, POST /v1/embeddings (unary.cc).
void HandleListModels(const RouteEnv& env, std::shared_ptr<Exchange> ex);
void HandleGetModel(const RouteEnv& env, std::shared_ptr<Exchange> ex, const std::string& id);
void HandleEmbeddings(const RouteEnv& env, std::shared_ptr<Exchange> ex);
// POST /v1/responses, GET and DELETE /v1/responses/{id} (responses.cc).
void HandleCreateResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex);
void HandleGetResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex, const std::string& id);
void HandleDeleteResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex,
                          const std::string& id);

}  // namespace lmgate::http_ingress

#endif  // LMGATE_SERVICES_HTTP_INGRESS_ROUTES_H_
