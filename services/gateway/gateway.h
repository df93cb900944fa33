// Gateway: the gRPC-free core every RPC goes through. It reads a request left to right:
// defaults → (admission) → (lifecycle: ensure the model is ready) → driver selection → driver,
// and carries results back with lmgate's own bookkeeping (which driver, queue/load waits, timing).
//
// Thread-safe. Unary methods block (call them from worker threads, not gRPC reactions);
// Generate() never blocks and reports through a GenerateSink.
#ifndef LMGATE_SERVICES_GATEWAY_GATEWAY_H_
#define LMGATE_SERVICES_GATEWAY_GATEWAY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/selector.h"

namespace lmgate::gateway {

using backends::CallContext;
using backends::DriverKind;

struct GatewayOptions {
  // Model used when a chat/complete request names none. Empty: such requests fail with
  // INVALID_ARGUMENT asking for a model.
  std::string default_model;
  // Model used when an embed request names none.
  std::string default_embedding_model;
};

// A Chat or Complete request after conversion from the API.
struct GenerateCall {
  std::string model;  // as the caller named it; "" = default
  DriverKind driver = DriverKind::kAuto;
  backends::GenerateRequest request;  // request.model is filled in by the gateway
};

// lmgate's view of a finished generation: the driver's result plus gateway bookkeeping.
struct GenerateOutcome {
  backends::GenerateResult result;
  DriverKind driver = DriverKind::kAuto;
  std::string model_key;
  std::string instance;
  absl::Duration queue_wait;
  absl::Duration load_wait;
  absl::Duration total_time;
};

// Receives one Generate() call's progress. Same threading rules as backends::GenerateObserver:
// calls are sequential, OnComplete exactly once and last. Must not block.
class GenerateSink {
 public:
  virtual ~GenerateSink() = default;
  // The driver that is serving the call (before its first event; may be called again if the
  // call falls back to another driver before anything was streamed).
  virtual void OnDriver(DriverKind driver) = 0;
  virtual void OnModelLoading(double progress) = 0;
  virtual void OnQueued(int position) = 0;
  virtual void OnEvent(backends::GenerateEvent event) = 0;
  virtual void OnComplete(absl::StatusOr<GenerateOutcome> outcome) = 0;
};

// Handle to cancel a running Generate(); idempotent, thread-safe, non-blocking.
class GenerateControl {
 public:
  virtual ~GenerateControl() = default;
  virtual void Cancel() = 0;
};

struct ModelView {
  backends::ModelInfo info;
  std::vector<backends::InstanceInfo> instances;
  bool loading = false;
};

struct ModelsView {
  std::vector<ModelView> models;
  DriverKind driver = DriverKind::kAuto;
};

class Gateway {
 public:
  Gateway(GatewayOptions options, std::shared_ptr<backends::DriverSet> drivers);

  absl::StatusOr<ModelsView> ListModels(const CallContext& ctx, DriverKind driver);
  // NOT_FOUND when neither a model key nor an instance identifier matches.
  absl::StatusOr<ModelView> GetModel(const CallContext& ctx, const std::string& model);
  absl::StatusOr<backends::InstanceInfo> Load(const CallContext& ctx, DriverKind driver,
                                              backends::LoadParams params,
                                              const backends::LoadProgressFn& progress,
                                              DriverKind* used);
  // Returns the unloaded identifiers.
  absl::StatusOr<std::vector<std::string>> Unload(const CallContext& ctx, DriverKind driver,
                                                  const std::string& model, bool all_instances);

  std::unique_ptr<GenerateControl> Generate(const CallContext& ctx, GenerateCall call,
                                            std::shared_ptr<GenerateSink> sink);

  struct EmbedOutcome {
    backends::EmbedResult result;
    DriverKind driver = DriverKind::kAuto;
    std::string model;
  };
  absl::StatusOr<EmbedOutcome> Embed(const CallContext& ctx, DriverKind driver,
                                     const std::string& model,
                                     const std::vector<std::string>& inputs);
  absl::StatusOr<std::vector<int>> Tokenize(const CallContext& ctx, DriverKind driver,
                                            const std::string& model, const std::string& text,
                                            DriverKind* used);

  const GatewayOptions& options() const { return options_; }

 private:
  const GatewayOptions options_;
  const std::shared_ptr<backends::DriverSet> drivers_;
};

// Builds the list of models from a driver's host view (downloaded + loaded).
ModelsView BuildModelsView(const backends::HostModels& host);

}  // namespace lmgate::gateway

#endif  // LMGATE_SERVICES_GATEWAY_GATEWAY_H_
