// The OpenAI-style calls shared by the openai driver (/v1/...) and the rest driver (/api/v0/...):
// a streamed prediction and a batch embedding. Thread-safe.
//
// StartGenerateStream builds the body (openai_wire.h), POSTs it with stream:true, parses SSE
// (sse.h), feeds the observer, and finishes it exactly once. Delivery follows driver.h's
// GenerateObserver contract: events and the completion run on the client's loop thread, in
// order; OnComplete exactly once — CANCELLED after
// GenerateHandle::Cancel() or the CallContext's token (the HTTP transfer is aborted, so LM Studio
// sees the client disconnect and stops predicting; a cancel that races with an answer already
// complete up to "[DONE]" yields that answer), DEADLINE_EXCEEDED at ctx.deadline,
// UNAVAILABLE when the connection breaks or goes idle, the status.h code of an HTTP error or of an
// in-stream `{"error":...}`. A request that cannot be encoded fails inside the call.
//
// Statistics: usage and finish_reason from the stream; with `use_upstream_stats` the `stats`
// block of REST v0 (upstream_timings=true). Otherwise TTFT (from the call to the first piece) and
// tokens/s (completion tokens over the time after the first piece) are measured here. Without a
// usage chunk, completion_tokens counts streamed pieces (LM Studio sends one per token).
#ifndef LMGATE_BACKENDS_HTTP_OPENAI_CALLS_H_
#define LMGATE_BACKENDS_HTTP_OPENAI_CALLS_H_

#include <memory>
#include <string>
#include <vector>

#include "backends/driver.h"
#include "backends/http/client.h"

namespace lmgate::backends::http {

struct GenerateStreamOptions {
  std::string chat_path;        // e.g. "/v1/chat/completions"
  std::string completion_path;  // e.g. "/v1/completions"
  bool use_upstream_stats = false;
};

// Never blocks. The handle may outlive `client` (Cancel() then does nothing).
std::unique_ptr<GenerateHandle> StartGenerateStream(HttpClient& client, const CallContext& ctx,
                                                    const GenerateRequest& request,
                                                    const GenerateStreamOptions& options,
                                                    std::shared_ptr<GenerateObserver> observer);

// POSTs all `inputs` in one request to `path` (e.g. "/v1/embeddings") and returns the vectors
// in input order. Embedding is a pure function of its input, so the call counts as idempotent
// (retried on connection failures / 5xx). Blocks; honours ctx.
absl::StatusOr<EmbedResult> DoEmbeddings(HttpClient& client, const CallContext& ctx,
                                         const std::string& path, const std::string& model,
                                         const std::vector<std::string>& inputs);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_OPENAI_CALLS_H_
