// The driver interface: one implementation per LM Studio interface (sdk_ws, rest, openai, cli).
//
// Threading contract (every driver):
// - All methods are thread-safe and may be called concurrently from any thread.
// - Unary methods (ListModels, Load, Unload, Embed, Tokenize, CountTokens) block the calling
//   thread until done, honour `ctx.deadline` (DEADLINE_EXCEEDED) and `ctx.cancel`
//   (CANCELLED), and must not be called from a gRPC reaction (the service layer runs them on its
//   own worker threads).
// - Generate() never blocks: it starts the prediction and returns a handle at once. Events and
//   the single completion are delivered on a driver-owned thread (see GenerateObserver).
// - Drivers never see gRPC types; errors are absl::Status with the codes documented in
//   ../STYLE (UNAVAILABLE = retry may work, FAILED_PRECONDITION = not until state changes, ...).
#ifndef LMGATE_BACKENDS_DRIVER_H_
#define LMGATE_BACKENDS_DRIVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/types.h"

namespace lmgate::backends {

// A one-shot cancellation signal shared between a caller and the work it started.
// Thread-safe. Callbacks run exactly once: on the thread calling Cancel(), or immediately inside
// AddCallback() if already cancelled. Callbacks must be short and must not block.
class CancelToken {
 public:
  using CallbackId = uint64_t;

  void Cancel();
  bool cancelled() const;
  // Registers `fn` to run on cancellation. Returns an id for RemoveCallback().
  CallbackId AddCallback(std::function<void()> fn);
  // After this returns, the callback is not running and will never run.
  void RemoveCallback(CallbackId id);

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  CallbackId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::pair<CallbackId, std::function<void()>>> callbacks_ ABSL_GUARDED_BY(mu_);
  // Serialises callback execution with RemoveCallback().
  absl::Mutex run_mu_;
};

// The cancel callback of work that other threads can see before the callback is registered (the
// usual shape: publish the work under a lock, register the callback after it), so the work may
// complete on another thread first. Thread-safe; Register() and Complete() once each, in either
// order.
class CancelRegistration {
 public:
  // Registers `fn` on `token` (nothing if null). If Complete() already ran, removes it again.
  void Register(const std::shared_ptr<CancelToken>& token, std::function<void()> fn);
  // The work completed: removes the callback, waiting for it if it is running, unless
  // `from_callback` says this runs inside the callback itself (which must not wait for itself).
  void Complete(bool from_callback);

 private:
  absl::Mutex mu_;
  std::shared_ptr<CancelToken> token_ ABSL_GUARDED_BY(mu_);
  CancelToken::CallbackId id_ ABSL_GUARDED_BY(mu_) = 0;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
};

// Per-call context handed to every driver method.
struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<CancelToken> cancel;  // may be null: not cancellable
  std::string request_id;               // for logs
  // The caller's W3C trace context (`traceparent` header, validated), forwarded on the HTTP
  // drivers' requests to LM Studio; empty = none.
  std::string traceparent;

  bool cancelled() const { return cancel && cancel->cancelled(); }
  // DEADLINE_EXCEEDED / CANCELLED if the call should stop now, else OK.
  absl::Status CheckAlive() const;
};

// Receives one prediction's stream. Called on a driver thread; OnEvent calls are sequential and
// in order; OnComplete is called exactly once, after the last OnEvent, even when the stream is
// cancelled (then with CANCELLED) or the connection is lost (UNAVAILABLE). When a request fails
// before anything was sent upstream, OnComplete may run synchronously inside Generate(). The
// driver holds a shared_ptr to the observer until OnComplete returns. Must not block.
class GenerateObserver {
 public:
  virtual ~GenerateObserver() = default;
  virtual void OnEvent(GenerateEvent event) = 0;
  virtual void OnComplete(absl::StatusOr<GenerateResult> result) = 0;
};

// Handle of a running prediction. Thread-safe; Cancel() is idempotent and non-blocking: it asks
// the driver to stop the upstream prediction (SDK `cancel`, aborted HTTP transfer); OnComplete
// follows with CANCELLED. Destroying the handle does not cancel.
class GenerateHandle {
 public:
  virtual ~GenerateHandle() = default;
  virtual void Cancel() = 0;
};

// Progress callback for loads, 0..1; called on the loading thread, must not block.
using LoadProgressFn = std::function<void(double)>;

// Which operations a driver can perform (the AUTO selection table reads these).
struct Capabilities {
  bool list_models = false;         // downloaded + loaded
  bool load = false;
  bool load_progress = false;       // Load() reports progress
  bool unload = false;
  bool chat = false;
  bool complete = false;
  bool embed = false;
  bool tokenize = false;            // Tokenize and CountTokens
  bool inference_stats = false;     // upstream TTFT / tokens/s / stop reason
  bool tool_calls = false;
  bool structured_output = false;
  bool context_overflow_policy = false;  // GenerateRequest::overflow reaches the host
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Stops the driver for good: every prediction still running completes (OnComplete with
  // CANCELLED or UNAVAILABLE) and every blocking call returns, each before Shutdown() returns;
  // the driver's own threads are joined, so none of them calls into an observer afterwards.
  // Later calls fail at once (UNAVAILABLE/CANCELLED; Generate completes inside the call).
  // Idempotent; call it from a thread of the owner, never from a driver callback. The
  // destructor does the same. The owner calls it before destroying what the observers call into
  // (services/server.h: the registry holding leases, the metrics observer).
  virtual void Shutdown() {}

  virtual DriverKind kind() const = 0;
  virtual Capabilities capabilities() const = 0;

  // OK if the driver can reach the host now (cheap; may use a cached answer for ~1s).
  // FAILED_PRECONDITION with an actionable message when it is not installed/configured (e.g. the
  // `lms` binary missing), UNAVAILABLE when the host does not answer.
  virtual absl::Status Probe(const CallContext& ctx) = 0;
  // The LM Studio version the host reports ("x.y.z"), for GetServerInfo. UNIMPLEMENTED when the
  // interface has no way to tell (REST, OpenAI, CLI); UNAVAILABLE when the host does not answer.
  virtual absl::StatusOr<std::string> HostVersion(const CallContext& ctx) = 0;

  virtual absl::StatusOr<HostModels> ListModels(const CallContext& ctx) = 0;
  // Loads and returns the new instance. Progress, when supported, goes to `progress`.
  virtual absl::StatusOr<InstanceInfo> Load(const CallContext& ctx, const LoadParams& params,
                                            const LoadProgressFn& progress) = 0;
  virtual absl::Status Unload(const CallContext& ctx, const std::string& identifier) = 0;

  virtual std::unique_ptr<GenerateHandle> Generate(const CallContext& ctx,
                                                   const GenerateRequest& request,
                                                   std::shared_ptr<GenerateObserver> observer) = 0;
  virtual absl::StatusOr<EmbedResult> Embed(const CallContext& ctx, const std::string& model,
                                            const std::vector<std::string>& inputs) = 0;
  virtual absl::StatusOr<std::vector<int>> Tokenize(const CallContext& ctx,
                                                    const std::string& model,
                                                    const std::string& text) = 0;
  virtual absl::StatusOr<int> CountTokens(const CallContext& ctx, const std::string& model,
                                          const std::string& text) = 0;
};

// Base with every operation answering UNIMPLEMENTED naming the driver, so a driver implements
// only what its interface offers.
class DriverBase : public Driver {
 public:
  absl::Status Probe(const CallContext& ctx) override;
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

 protected:
  absl::Status Unsupported(absl::string_view operation) const;
};

// A GenerateHandle for a stream that already completed (or never started).
class NoopGenerateHandle : public GenerateHandle {
 public:
  void Cancel() override {}
};

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_DRIVER_H_
