// Conversions between lmgate.v1 messages and the gRPC-free core types, and request validation.
// Validation rejects bad input with INVALID_ARGUMENT naming the field, before anything reaches
// the host.
#ifndef LMGATE_SERVICES_CONVERT_H_
#define LMGATE_SERVICES_CONVERT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/types.h"
#include "lmgate/v1/inference.pb.h"
#include "lmgate/v1/model_manager.pb.h"
#include "services/gateway/gateway.h"
#include "services/lifecycle/events.h"
#include "services/lifecycle/registry.h"

namespace lmgate::services {

// Limits applied by validation (documented in the proto comments).
inline constexpr int kMaxMessages = 4096;
inline constexpr size_t kMaxTextBytes = 4 << 20;  // per message / prompt / input
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;
inline constexpr int kMaxEmbedInputs = 2048;
inline constexpr size_t kMaxModelNameBytes = 512;
// Context windows (LoadConfig.context_length) and sampling.max_tokens: 1..2^24 tokens, beyond
// any model's; with the model known, context_length is also checked against its
// max_context_length (ValidateLoadForModel).
inline constexpr int kMaxContextLength = 1 << 24;
inline constexpr int kMaxTopK = 1000000;
inline constexpr int kMaxEvalBatchSize = 65536;
inline constexpr double kMaxRopeFrequencyBase = 1e9;
inline constexpr double kMaxRopeFrequencyScale = 1000;
// TTLs (LoadConfig.ttl, ttl_hint): 1 s .. 365 days.
inline constexpr absl::Duration kMaxTtl = absl::Hours(24 * 365);

// The limits validation takes from the config (gateway::GatewayOptions).
struct ValidationLimits {
  // Deepest nesting of a request's JSON fields (config max_json_depth).
  int max_json_depth = gateway::kDefaultMaxJsonDepth;
};

// A protobuf Duration of `d` (answers that report how long something took).
void SetDuration(absl::Duration d, google::protobuf::Duration* out);

backends::DriverKind FromProto(v1::Driver driver);
v1::Driver ToProto(backends::DriverKind driver);

absl::StatusOr<gateway::GenerateCall> ToGenerateCall(const v1::ChatRequest& req,
                                                     const ValidationLimits& limits = {});
absl::StatusOr<gateway::GenerateCall> ToGenerateCall(const v1::CompleteRequest& req,
                                                     const ValidationLimits& limits = {});
// Sampling settings with their ranges (INVALID_ARGUMENT naming sampling.FIELD).
absl::StatusOr<backends::Sampling> ToSampling(const v1::SamplingParams& s);
absl::Status ValidateEmbed(const v1::EmbedRequest& req);
absl::Status ValidateTokenize(const v1::TokenizeRequest& req);
absl::StatusOr<backends::LoadParams> ToLoadParams(const v1::LoadModelRequest& req);
// The load settings against what the host lists for the model once its name is resolved:
// context_length at most its max_context_length (when the host reports one). Call before the
// load is sent.
absl::Status ValidateLoadForModel(const backends::LoadParams& params,
                                  const backends::ModelInfo& model);
absl::Status ValidateUnload(const v1::UnloadModelRequest& req);
absl::Status ValidateListModels(const v1::ListModelsRequest& req);
absl::Status ValidateWatch(const v1::WatchModelsRequest& req);
// Validates a model name or instance identifier: at most kMaxModelNameBytes, no control
// characters, no leading '-' ("" allowed when `allow_empty`).
absl::Status ValidateModelName(const std::string& model, bool allow_empty);

// UpdateModelPolicy's request, validated (services/policy_convert.cc).
struct PolicyChange {
  std::string model;
  lifecycle::PolicyUpdate update;
  bool reset = false;
  bool make_default = false;
};
absl::StatusOr<PolicyChange> ToPolicyChange(const v1::UpdateModelPolicyRequest& req);
void ToProto(const lifecycle::ModelRegistry::PolicyView& view, v1::ModelPolicy* out);

v1::StopReason ToProto(backends::StopReason reason);
void ToProto(const gateway::GenerateOutcome& outcome, v1::InferenceResult* out);
void ToProto(const lifecycle::InstanceSnapshot& inst, v1::ModelInstance* out);
void ToProto(const lifecycle::ModelSnapshot& model, v1::Model* out);
void ToProto(const lifecycle::Event& event, v1::ModelEvent* out);
v1::ModelState ToProto(lifecycle::State state);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_CONVERT_H_
