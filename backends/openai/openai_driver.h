// The `openai` driver: LM Studio's OpenAI-compatible API (/v1/models, /v1/chat/completions,
// /v1/completions, /v1/embeddings) over the one HTTP client (backends/http).
//
// Supports: list models (see below), chat and text completion streamed over SSE with
// stream_options.include_usage (every Sampling field, tools + tool_choice, tool-call deltas,
// json_schema structured output, reasoning deltas), batch embeddings. Not supported (UNIMPLEMENTED
// from DriverBase): load, unload, tokenize, count tokens. Inference statistics are measured
// locally (GenerateStats::upstream_timings = false): completion tokens and finish_reason come from
// the stream, TTFT and tokens/s from the clock.
//
// ListModels: /v1/models lists model keys of all downloaded models when LM Studio's JIT loading
// is on, and identifiers of loaded instances when it is off; the answer does not say which.
//   jit = kOn:      downloaded = ids (complete), loaded unknown (loaded_known = false).
//   jit = kOff:     loaded = ids (instances; key = id without a ":N" suffix), downloaded unknown.
//   jit = kUnknown (default) — heuristic: if any id carries an instance suffix ":N" (N >= 2,
//                   which only instance identifiers have) the list is taken as loaded instances
//                   (as kOff); otherwise the ids go to `downloaded` marked incomplete
//                   (downloaded_known = false) and loaded_known = false. The driver never claims
//                   a complete downloaded list it cannot be sure of.
//
// Thread-safe (driver.h contract). Generate() events run on the HTTP client's loop thread.
#ifndef LMGATE_BACKENDS_OPENAI_OPENAI_DRIVER_H_
#define LMGATE_BACKENDS_OPENAI_OPENAI_DRIVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/driver.h"
#include "backends/http/client.h"
#include "backends/http/host.h"
#include "backends/registry.h"

namespace lmgate::backends::openai {

class OpenAiDriver : public DriverBase {
 public:
  enum class JitMode { kUnknown, kOn, kOff };
  struct Options {
    HostConfig host;
    JitMode jit = JitMode::kUnknown;
  };

  // INVALID_ARGUMENT for a bad base URL.
  static absl::StatusOr<std::unique_ptr<OpenAiDriver>> Create(Options options);

  DriverKind kind() const override { return DriverKind::kOpenAi; }
  Capabilities capabilities() const override;
  // Finishes every transfer in flight (CANCELLED) and joins the HTTP client's loop thread.
  void Shutdown() override { client_->Shutdown(); }

  absl::Status Probe(const CallContext& ctx) override;
  absl::StatusOr<HostModels> ListModels(const CallContext& ctx) override;
  std::unique_ptr<GenerateHandle> Generate(const CallContext& ctx, const GenerateRequest& request,
                                           std::shared_ptr<GenerateObserver> observer) override;
  absl::StatusOr<EmbedResult> Embed(const CallContext& ctx, const std::string& model,
                                    const std::vector<std::string>& inputs) override;

  // Classifies a /v1/models id list (see the file comment). Exposed for tests.
  static HostModels ModelsFromIds(const std::vector<std::string>& ids, JitMode jit);

 private:
  OpenAiDriver(Options options, std::unique_ptr<http::HttpClient> client);

  const Options options_;
  std::unique_ptr<http::HttpClient> client_;
  http::ProbeCache probe_cache_;
};

}  // namespace lmgate::backends::openai

#endif  // LMGATE_BACKENDS_OPENAI_OPENAI_DRIVER_H_
