// The `rest` driver: LM Studio's own REST API over the one HTTP client (backends/http).
//
//   operation        endpoint                                   notes
//   ListModels       GET /api/v0/models (+ GET /api/v1/models)  v0: downloaded + state; v1, when
//                                                               present: instances with ids,
//                                                               context length, parallel slots
//   Load             POST /api/v1/models/load                   no progress; context_length,
//                                                               flash_attention, eval_batch_size
//   Unload           POST /api/v1/models/unload
//   Generate         POST /api/v0/chat/completions | completions, SSE; LM Studio's `stats`
//                    (tokens/s, TTFT, stop reason) when present -> upstream_timings = true
//   Embed            POST /api/v0/embeddings (batch)
//   Tokenize/Count   UNIMPLEMENTED (no REST endpoint)
//
// REST v1 (LM Studio >= 0.4) is detected on first need with GET /api/v1/models; LM Studio answers
// unknown paths with HTTP 200 {"error":"Unexpected endpoint..."} (UNIMPLEMENTED in status.h),
// which means "absent". A "present" answer is cached for good, an "absent" one is re-checked
// after `v1_recheck` (the host may be upgraded). Without v1, Load/Unload fail UNIMPLEMENTED
// naming the host as too old and pointing at the sdk_ws and cli drivers, and ListModels uses v0
// alone; a host without v0 is listed from v1 alone.
//
// Load errors: an answer of the host that failed the load (5xx, error body) is ABORTED with
// LM Studio's reason; unknown keys are NOT_FOUND; an unreachable host is UNAVAILABLE.
//
// Thread-safe (driver.h contract). Generate() events run on the HTTP client's loop thread.
#ifndef LMGATE_BACKENDS_REST_REST_DRIVER_H_
#define LMGATE_BACKENDS_REST_REST_DRIVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "backends/driver.h"
#include "backends/http/client.h"
#include "backends/http/host.h"
#include "backends/registry.h"

namespace lmgate::backends::rest {

class RestDriver : public DriverBase {
 public:
  struct Options {
    HostConfig host;
    absl::Duration v1_recheck = absl::Minutes(5);
  };

  // INVALID_ARGUMENT for a bad base URL.
  static absl::StatusOr<std::unique_ptr<RestDriver>> Create(Options options);

  DriverKind kind() const override { return DriverKind::kRest; }
  Capabilities capabilities() const override;
  // Finishes every transfer in flight (CANCELLED) and joins the HTTP client's loop thread.
  void Shutdown() override { client_->Shutdown(); }

  absl::Status Probe(const CallContext& ctx) override;
  absl::StatusOr<HostModels> ListModels(const CallContext& ctx) override;
  absl::StatusOr<InstanceInfo> Load(const CallContext& ctx, const LoadParams& params,
                                    const LoadProgressFn& progress) override;
  absl::Status Unload(const CallContext& ctx, const std::string& identifier) override;
  std::unique_ptr<GenerateHandle> Generate(const CallContext& ctx, const GenerateRequest& request,
                                           std::shared_ptr<GenerateObserver> observer) override;
  absl::StatusOr<EmbedResult> Embed(const CallContext& ctx, const std::string& model,
                                    const std::vector<std::string>& inputs) override;

 private:
  RestDriver(Options options, std::unique_ptr<http::HttpClient> client);

  // GET /api/v1/models. nullopt when the host has no REST v1; records what it learnt.
  absl::StatusOr<std::optional<HostModels>> FetchV1Models(const CallContext& ctx);
  // Whether the host serves REST v1 (cached, see the file comment).
  absl::StatusOr<bool> HasV1(const CallContext& ctx);
  void RecordV1(bool present);
  // A POST to a v1 model endpoint; on "v1 absent" answers records that and returns V1Missing.
  absl::StatusOr<http::HttpResponse> PostV1(const CallContext& ctx, const std::string& path,
                                            std::string body, absl::string_view operation);
  absl::Status V1Missing(absl::string_view operation) const;

  const Options options_;
  std::unique_ptr<http::HttpClient> client_;
  http::ProbeCache probe_cache_;

  absl::Mutex mu_;
  std::optional<bool> has_v1_ ABSL_GUARDED_BY(mu_);
  absl::Time v1_checked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::backends::rest

#endif  // LMGATE_BACKENDS_REST_REST_DRIVER_H_
