// SdkWsDriver: the Driver (kind kSdk, registry name "sdk_ws") for LM Studio's SDK WebSocket
// interface — the only interface with load progress, real upstream cancellation, per-prediction
// stats and a tokenizer.
//
// Everything goes over one persistent Connection (connection.h): one authenticated socket per
// namespace, opened on first use and shared by all concurrent calls. Operations:
// - ListModels: system/listDownloadedModels + listLoaded on llm and embedding, in parallel; then
//   `getLoadConfig` per loaded LLM for its slot count (the instance infos have none), pipelined.
// - Load: the `loadModel` channel on the model's namespace (looked up in the downloaded list),
//   progress → LoadProgressFn on the calling thread; cancel/deadline → {"type":"cancel"}, then
//   CANCELLED / DEADLINE_EXCEEDED. If the host reports success before it saw the cancel, the
//   loaded instance is returned (so it is not orphaned). Then `getLoadConfig` for its slot count.
//   Slot counts are numParallelSessions, or the SDK's default 4 when the config leaves it out.
// - Unload: `unloadModel` on the instance's namespace (llm first when unknown, then embedding).
// - Generate: `predict` (chat) / `completeRawText` (complete) on llm; the model is
//   `instanceReference` when the request carries one, else a query by identifier.
// - Embed: one `embedString` per input, all pipelined at once; prompt_tokens is 0 (not reported).
// - Tokenize / CountTokens: `tokenize` / `countTokens` on the model's namespace.
//
// Errors: host errors map per protocol.h (NOT_FOUND for unknown models/instances, ...); a socket
// that cannot be opened or is lost → UNAVAILABLE (in-flight work fails, nothing is replayed);
// rejected credentials → UNAUTHENTICATED. Unary calls without a deadline are bounded by
// HostConfig::request_timeout (loads by load_timeout). Idempotent reads (ListModels, Embed,
// Tokenize, CountTokens) are retried up to HostConfig::max_retries times when the socket is lost
// under them; Load, Unload and Generate never are. Only ws:// hosts are supported: with an
// https/wss base URL, Probe() and every operation answer FAILED_PRECONDITION.
//
// Thread-safety: as the Driver contract (driver.h). Generate observers are called on the
// driver's io thread. Shutdown() (and destroying the driver) completes every prediction still
// running with UNAVAILABLE and joins that thread; do not call either from inside an observer.
#ifndef LMGATE_BACKENDS_SDK_WS_SDK_DRIVER_H_
#define LMGATE_BACKENDS_SDK_WS_SDK_DRIVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/registry.h"
#include "backends/sdk_ws/connection.h"

namespace lmgate::backends::sdk_ws {

class SdkWsDriver : public DriverBase {
 public:
  struct Options {
    HostConfig host;
    // Reconnect backoff after a failed connection attempt (exponential, with jitter).
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    // How long the host may take to end a cancelled prediction/load before it is failed locally.
    absl::Duration cancel_grace = absl::Seconds(5);
    // How long a Probe() answer is reused.
    absl::Duration probe_cache = absl::Seconds(1);
  };

  // INVALID_ARGUMENT for an unparsable base URL or a malformed API token. Connects nothing.
  static absl::StatusOr<std::unique_ptr<SdkWsDriver>> Create(Options options);
  ~SdkWsDriver() override;

  DriverKind kind() const override { return DriverKind::kSdk; }
  Capabilities capabilities() const override;
  void Shutdown() override;

  absl::Status Probe(const CallContext& ctx) override;
  // system/version: {"version":"x.y.z","build":N}.
  absl::StatusOr<std::string> HostVersion(const CallContext& ctx) override;
  absl::StatusOr<HostModels> ListModels(const CallContext& ctx) override;
  absl::StatusOr<InstanceInfo> Load(const CallContext& ctx, const LoadParams& params,
                                    const LoadProgressFn& progress) override;
  absl::Status Unload(const CallContext& ctx, const std::string& identifier) override;
  std::unique_ptr<GenerateHandle> Generate(const CallContext& ctx, const GenerateRequest& request,
                                           std::shared_ptr<GenerateObserver> observer) override;
  absl::StatusOr<EmbedResult> Embed(const CallContext& ctx, const std::string& model,
                                    const std::vector<std::string>& inputs) override;
  absl::StatusOr<std::vector<int>> Tokenize(const CallContext& ctx, const std::string& model,
                                            const std::string& text) override;
  absl::StatusOr<int> CountTokens(const CallContext& ctx, const std::string& model,
                                  const std::string& text) override;

  // Socket counters (tests, metrics). Zero when the driver is unsupported (https).
  ConnectionStats connection_stats() const;

 private:
  SdkWsDriver(Options options, std::unique_ptr<Connection> connection, absl::Status unsupported);

  absl::Time UnaryDeadline(const CallContext& ctx) const;
  // What the caches know about a model key or instance identifier.
  ModelType KnownType(const std::string& name) const;
  void Remember(const std::string& name, ModelType type);
  void Forget(const std::string& name);
  // Sends `requests` (pipelined) and waits for all results. Idempotent calls are retried on
  // UNAVAILABLE — a socket lost under them — up to HostConfig::max_retries times.
  // Sets parallel_slots of the LLM instances from the host's getLoadConfig (pipelined).
  void ReadSlotCounts(const CallContext& ctx, const std::vector<InstanceInfo*>& instances);
  absl::StatusOr<std::vector<Json>> CallAll(const CallContext& ctx, std::vector<RpcRequest> requests,
                                            bool idempotent);
  absl::StatusOr<Json> Call(const CallContext& ctx, RpcRequest request, bool idempotent);
  // Runs `request` against `model`'s namespace: the known one, else llm then (on NOT_FOUND)
  // embedding. `make` builds the request for a namespace.
  absl::StatusOr<Json> CallOnModelNamespace(const CallContext& ctx, const std::string& model,
                                            bool idempotent,
                                            const std::function<RpcRequest(Namespace)>& make);

  const Options options_;
  const std::unique_ptr<Connection> connection_;  // null when unsupported
  const absl::Status unsupported_;                // OK, or FAILED_PRECONDITION (https)

  mutable absl::Mutex mu_;
  // Model keys and instance identifiers → their domain, learned from listings and loads.
  std::map<std::string, ModelType> types_ ABSL_GUARDED_BY(mu_);
  absl::Time probe_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status probe_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_SDK_DRIVER_H_
