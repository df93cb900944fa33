// FakeDriver: an in-memory LM Studio for service and lifecycle tests (no network).
//
// It keeps a catalogue of downloaded models and loaded instances, "generates" a deterministic
// reply word by word on its own thread, and counts what it was asked to do, so tests can assert
// "exactly one load" or "no prediction left running". Knobs let a test hold a prediction or a
// load open until it releases it, or make the next calls fail.
//
// Thread-safe. Shutdown() (and destroying it) cancels running predictions (their OnComplete runs
// before it returns) and joins its threads; later predictions and calls fail with UNAVAILABLE.
#ifndef LMGATE_BACKENDS_FAKE_FAKE_DRIVER_H_
#define LMGATE_BACKENDS_FAKE_FAKE_DRIVER_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "backends/driver.h"

namespace lmgate::backends {

class FakeDriver : public DriverBase {
 public:
  struct Options {
    DriverKind kind = DriverKind::kSdk;
    Capabilities capabilities = AllCapabilities();
    std::vector<ModelInfo> catalogue = DefaultCatalogue();
    // Words produced per prediction when max_tokens is unset.
    int reply_words = 8;
  };
  static Capabilities AllCapabilities();
  static std::vector<ModelInfo> DefaultCatalogue();

  explicit FakeDriver(Options options);
  ~FakeDriver() override;
  void Shutdown() override;

  DriverKind kind() const override { return options_.kind; }
  Capabilities capabilities() const override { return options_.capabilities; }

  absl::Status Probe(const CallContext& ctx) override;
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

  // The deterministic reply to `request` (what Generate streams, joined).
  static std::string ReplyFor(const GenerateRequest& request, int words);

  // --- test knobs ---
  // Predictions stop after their first token until ReleasePredictions() (or a cancel).
  void HoldPredictions(bool hold);
  // Loads block after progress 0.5 until ReleaseLoads() (or a cancel).
  void HoldLoads(bool hold);
  // The next `n` calls of any kind fail with `status` before doing anything.
  void FailNext(int n, absl::Status status);
  // Marks a model loaded without a Load() call (as if loaded in the LM Studio app).
  void AddLoadedExternally(const std::string& model_key);

  // --- counters ---
  int loads_started() const;
  int unloads() const;
  int predictions_started() const;
  int predictions_cancelled() const;
  int predictions_active() const;
  // Blocks until predictions_active() == n or `timeout` passes; returns whether it got there.
  bool WaitForActivePredictions(int n, absl::Duration timeout) const;
  // Blocks until `n` predictions hold (HoldPredictions) or `timeout`.
  bool WaitForHeldPredictions(int n, absl::Duration timeout) const;
  bool WaitForHeldLoads(int n, absl::Duration timeout) const;
  // The last GenerateRequest seen (for tests of request conversion).
  GenerateRequest last_request() const;
  // CallContext::traceparent of the last Generate() call.
  std::string last_traceparent() const;

 private:
  struct Prediction;
  absl::Status TakeInjectedFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const ModelInfo* FindModel(const std::string& key) const;
  void RunPrediction(std::shared_ptr<Prediction> p);

  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<InstanceInfo> loaded_ ABSL_GUARDED_BY(mu_);
  bool hold_predictions_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_loads_ ABSL_GUARDED_BY(mu_) = false;
  int held_predictions_ ABSL_GUARDED_BY(mu_) = 0;
  int held_loads_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_status_ ABSL_GUARDED_BY(mu_);
  int loads_started_ ABSL_GUARDED_BY(mu_) = 0;
  int unloads_ ABSL_GUARDED_BY(mu_) = 0;
  int predictions_started_ ABSL_GUARDED_BY(mu_) = 0;
  int predictions_cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  int predictions_active_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_{false};  // shutting_down_, readable without mu_
  GenerateRequest last_request_ ABSL_GUARDED_BY(mu_);
  std::string last_traceparent_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_FAKE_FAKE_DRIVER_H_
