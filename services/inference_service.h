// lmgate.v1.Inference as a thin callback-API shell: validate and convert the request, hand it to
// the Gateway core, stream what comes back. No LM Studio knowledge here.
#ifndef LMGATE_SERVICES_INFERENCE_SERVICE_H_
#define LMGATE_SERVICES_INFERENCE_SERVICE_H_

#include <functional>
#include <memory>
#include <vector>

#include "lmgate/v1/inference.grpc.pb.h"
#include "services/conversations/conversations.h"
#include "services/convert.h"
#include "services/gateway/gateway.h"
#include "services/observe.h"
#include "services/stream_reactor.h"
#include "services/worker_pool.h"

namespace lmgate::services {

// Thread-safe. `gateway` and `pool` must outlive the server.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  // `identity` must outlive the server; it may hold null (no API keys, no allowlist).
  // `stream_limits` bound each Chat/Complete stream's send queue: a client that does not read
  // gets its generation cancelled. `conversations` (must outlive the server; null = none: a Chat
  // with previous_response_id or store gets FAILED_PRECONDITION) serves stored conversations.
  InferenceService(gateway::Gateway* gateway, WorkerPool* pool,
                   const admission::IdentityHolder* identity, Observer* observer,
                   StreamLimits stream_limits = {},
                   conversations::Conversations* conversations = nullptr)
      : gateway_(gateway),
        pool_(pool),
        identity_(identity),
        observer_(observer),
        stream_limits_(stream_limits),
        conversations_(conversations) {}

  grpc::ServerWriteReactor<v1::ChatResponse>* Chat(grpc::CallbackServerContext* ctx,
                                                   const v1::ChatRequest* req) override;
  grpc::ServerWriteReactor<v1::ChatResponse>* Complete(grpc::CallbackServerContext* ctx,
                                                       const v1::CompleteRequest* req) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const v1::EmbedRequest* req,
                                  v1::EmbedResponse* resp) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override;
  grpc::ServerUnaryReactor* CountTokens(grpc::CallbackServerContext* ctx,
                                        const v1::TokenizeRequest* req,
                                        v1::CountTokensResponse* resp) override;

 private:
  // `conversation` (Chat with previous_response_id or store; else null) sends the call through
  // conversations_.
  grpc::ServerWriteReactor<v1::ChatResponse>* StartGenerate(
      grpc::CallbackServerContext* ctx, const char* method,
      absl::StatusOr<gateway::GenerateCall> call, bool no_deltas, bool quiet,
      const v1::ChatRequest* conversation = nullptr);

  // Tokenize and CountTokens: the same call, two response shapes.
  grpc::ServerUnaryReactor* RunTokenize(
      grpc::CallbackServerContext* ctx, const char* method, const v1::TokenizeRequest* req,
      std::function<void(const std::vector<int>&, v1::Driver)> fill);
  // The model a request names, or the default it will get (what permissions are checked on).
  std::string EffectiveModel(const std::string& model, bool embedding) const;
  // Validation limits from the config.
  ValidationLimits Limits() const;

  gateway::Gateway* const gateway_;
  WorkerPool* const pool_;
  const admission::IdentityHolder* const identity_;
  Observer* const observer_;
  const StreamLimits stream_limits_;
  conversations::Conversations* const conversations_;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_INFERENCE_SERVICE_H_
