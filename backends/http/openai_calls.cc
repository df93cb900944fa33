#include "backends/http/openai_calls.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/http/log.h"
#include "backends/http/openai_wire.h"
#include "backends/http/sse.h"
#include "backends/log.h"

namespace lmgate::backends::http {
namespace {

// Everything one prediction needs. Callbacks run on the loop thread; Cancel() on any thread.
class StreamState : public std::enable_shared_from_this<StreamState> {
 public:
  StreamState(std::shared_ptr<GenerateObserver> observer, bool use_upstream_stats,
              std::string base_url, std::string path, std::string request_id)
      : observer_(std::move(observer)),
        accumulator_(use_upstream_stats, std::move(base_url), std::move(path)),
        request_id_(std::move(request_id)),
        start_(absl::Now()) {}

  void SetHandle(std::shared_ptr<StreamHandle> handle) {
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      handle_ = handle;
      cancel = cancel_pending_;
    }
    if (cancel) handle->Cancel();
  }

  void Cancel() {
    std::shared_ptr<StreamHandle> handle;
    {
      absl::MutexLock lock(&mu_);
      cancel_pending_ = true;
      handle = handle_;
    }
    if (handle) handle->Cancel();
  }

  // Loop thread.
  void OnChunk(absl::string_view bytes) {
    if (!failure_.ok() || accumulator_.saw_done()) return;
    std::vector<SseEvent> sse;
    absl::Status status = parser_.Feed(bytes, &sse);
    Consume(sse);
    if (!status.ok() && failure_.ok()) Fail(std::move(status));
  }

  void OnDone(absl::Status status, HttpResponse response) {
    absl::Status final_status = failure_;
    // After "[DONE]" the prediction is complete: a cancel or a broken connection that raced
    // with the end of the answer changes nothing.
    if (final_status.ok() && !status.ok() && !accumulator_.saw_done()) {
      final_status = std::move(status);
    }
    if (final_status.ok() && !response.body.empty()) {
      // A JSON answer instead of a stream (some proxies ignore stream:true): same parser.
      std::vector<GenerateEvent> events;
      final_status = accumulator_.AddWhole(response.body, &events);
      Emit(std::move(events));
    } else if (final_status.ok() && !accumulator_.saw_done()) {
      std::vector<SseEvent> sse;
      final_status = parser_.Finish(&sse);
      Consume(sse);
      if (!failure_.ok()) final_status = failure_;
      if (final_status.ok() && !accumulator_.saw_done() && !accumulator_.saw_finish()) {
        final_status = absl::UnavailableError(
            "the stream from LM Studio ended before the prediction finished");
      }
    }
    std::shared_ptr<GenerateObserver> observer = std::move(observer_);
    if (!final_status.ok()) {
      observer->OnComplete(std::move(final_status));
      return;
    }
    GenerateResult result = accumulator_.TakeResult();
    GenerateStats& stats = result.stats;
    if (stats.completion_tokens == 0 && !accumulator_.saw_usage()) {
      stats.completion_tokens = accumulator_.deltas();
    }
    if (!stats.upstream_timings && first_piece_) {
      stats.time_to_first_token = *first_piece_ - start_;
      absl::Duration generating = absl::Now() - *first_piece_;
      if (stats.completion_tokens > 0 && generating > absl::ZeroDuration()) {
        stats.tokens_per_second = stats.completion_tokens / absl::ToDoubleSeconds(generating);
      }
    }
    observer->OnComplete(std::move(result));
  }

 private:
  void Consume(const std::vector<SseEvent>& sse) {
    for (const SseEvent& e : sse) {
      if (!failure_.ok() || accumulator_.saw_done()) return;
      std::vector<GenerateEvent> events;
      absl::Status status = accumulator_.AddChunk(e.data, &events);
      Emit(std::move(events));
      if (!status.ok()) Fail(std::move(status));
    }
  }

  void Emit(std::vector<GenerateEvent> events) {
    if (events.empty()) return;
    if (!first_piece_) first_piece_ = absl::Now();
    for (GenerateEvent& e : events) observer_->OnEvent(std::move(e));
  }

  // Ends the transfer; OnDone then reports `status` instead of CANCELLED.
  void Fail(absl::Status status) {
    RequestLog(HttpLog(), request_id_)
        .debug("prediction failed in the stream: {}", status.ToString());
    failure_ = std::move(status);
    Cancel();
  }

  std::shared_ptr<GenerateObserver> observer_;
  CompletionAccumulator accumulator_;
  SseParser parser_;
  absl::Status failure_;
  std::optional<absl::Time> first_piece_;
  const std::string request_id_;
  const absl::Time start_;

  absl::Mutex mu_;
  std::shared_ptr<StreamHandle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancel_pending_ ABSL_GUARDED_BY(mu_) = false;
};

class StreamGenerateHandle : public GenerateHandle {
 public:
  explicit StreamGenerateHandle(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}
  void Cancel() override { state_->Cancel(); }

 private:
  std::shared_ptr<StreamState> state_;
};

}  // namespace

std::unique_ptr<GenerateHandle> StartGenerateStream(HttpClient& client, const CallContext& ctx,
                                                    const GenerateRequest& request,
                                                    const GenerateStreamOptions& options,
                                                    std::shared_ptr<GenerateObserver> observer) {
  absl::StatusOr<std::string> body = BuildGenerateBody(request, /*stream=*/true);
  if (!body.ok()) {
    observer->OnComplete(body.status());
    return std::make_unique<NoopGenerateHandle>();
  }
  HttpRequest http;
  http.method = "POST";
  http.path = request.chat ? options.chat_path : options.completion_path;
  http.body = std::move(*body);
  // A prediction changes nothing on the host, so a failed attempt is retried like Embed — and,
  // as every retry here (retry.h), only while no byte of the answer reached the caller.
  http.idempotent = true;
  auto state = std::make_shared<StreamState>(std::move(observer), options.use_upstream_stats,
                                             client.base_url(), http.path, ctx.request_id);
  StreamCallbacks callbacks;
  callbacks.on_chunk = [state](absl::string_view bytes) { state->OnChunk(bytes); };
  callbacks.on_done = [state](absl::Status status, HttpResponse response) {
    state->OnDone(std::move(status), std::move(response));
  };
  state->SetHandle(client.StartStream(ctx, http, std::move(callbacks)));
  return std::make_unique<StreamGenerateHandle>(std::move(state));
}

absl::StatusOr<EmbedResult> DoEmbeddings(HttpClient& client, const CallContext& ctx,
                                         const std::string& path, const std::string& model,
                                         const std::vector<std::string>& inputs) {
  if (model.empty()) return absl::InvalidArgumentError("no embedding model given");
  if (inputs.empty()) return EmbedResult{};
  HttpRequest http;
  http.method = "POST";
  http.path = path;
  http.body = BuildEmbeddingsBody(model, inputs);
  http.idempotent = true;
  absl::StatusOr<HttpResponse> response = client.Do(ctx, http);
  if (!response.ok()) return response.status();
  return ParseEmbeddingsResponse(response->body, inputs.size());
}

}  // namespace lmgate::backends::http
