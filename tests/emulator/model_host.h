// The emulated LM Studio host's state and behaviour, free of any transport: the model registry
// (loads with progress, JIT loading, idle TTL, auto-evict, several instances per model, parallel
// slots with a FIFO queue), predictions and embeddings, fault injection and counters.
//
// Threading model. Every mutable field is guarded by one mutex (`mu_`). Blocking operations
// (Load, GetOrLoad, ResolveForInference, Predict) run on worker threads started with Spawn(); they
// wait on `mu_` conditions with deadlines, so a Cancel() or Shutdown() wakes them at once. Observer
// callbacks are invoked from the worker thread WITHOUT `mu_` held and must not block (transports
// post the bytes to their own I/O executors). Non-blocking queries may be called from any thread,
// including I/O threads.
//
// Thread-safety: thread-safe.
#ifndef LMGATE_TESTS_EMULATOR_MODEL_HOST_H_
#define LMGATE_TESTS_EMULATOR_MODEL_HOST_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/catalogue.h"
#include "tests/emulator/control.h"
#include "tests/emulator/kv_config.h"
#include "tests/emulator/text_model.h"

namespace lmgate::emulator {

// Error details travel as absl::Status payloads so each transport can render LM Studio's shape.
inline constexpr char kPayloadHttpStatus[] = "emulator.http_status";   // e.g. "400"
inline constexpr char kPayloadErrorCode[] = "emulator.error_code";     // e.g. "model_not_found"
inline constexpr char kPayloadDisplayData[] = "emulator.display_data"; // SDK displayData JSON
absl::Status WithPayload(absl::Status status, const char* key, const std::string& value);
std::optional<std::string> GetPayload(const absl::Status& status, const char* key);

// A cancellable unit of work (one channel, one HTTP request). Created by Host::NewJob(); cancelled
// with Host::Cancel() from any thread, any number of times.
class Job {
 public:
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  friend class Host;
  std::atomic<bool> cancelled_{false};
};

// Opaque handle to one model instance (loading, loaded, or gone). Read it through Host methods.
struct Instance;
using InstanceHandle = std::shared_ptr<Instance>;

// Load events. All optional; called on the calling worker thread without locks.
class LoadObserver {
 public:
  virtual ~LoadObserver() = default;
  virtual void OnResolved(const nlohmann::json& model_info) {}
  virtual void OnAlreadyLoaded(const nlohmann::json& instance_info) {}
  virtual void OnStartLoading(const std::string& identifier, const nlohmann::json& model_info) {}
  virtual void OnUnloadingOther(const nlohmann::json& instance_info) {}
  virtual void OnProgress(double progress) {}
  virtual void OnLoaded(const nlohmann::json& instance_info) {}
};

struct LoadRequest {
  std::string model;                  // model key (or key@quant / path)
  std::optional<std::string> identifier;  // custom instance identifier
  std::optional<int64_t> ttl_ms;
  KvConfig config;                    // load config (llm.load.* / embedding.load.*)
};

struct Fragment {
  std::string content;
  int tokens_count = 1;
  std::string reasoning_type = "none";  // none | reasoning | reasoningStartTag | reasoningEndTag
  bool is_structural = false;
};

struct PredictionStats {
  std::string stop_reason;  // SDK stopReason values
  std::string stop_string;  // when stop_reason == "stopStringFound"
  double tokens_per_second = 0;
  double time_to_first_token_sec = 0;
  double total_time_sec = 0;
  int64_t prompt_tokens = 0;
  int64_t predicted_tokens = 0;
  int64_t reasoning_tokens = 0;
  nlohmann::json ToSdkJson() const;  // LLMPredictionStats
};

struct PredictionResult {
  PredictionStats stats;
  std::string content;    // non-reasoning content as sent
  std::string reasoning;  // reasoning text without the tags
  std::vector<ToolCall> tool_calls;
  std::string identifier;            // instance identifier
  nlohmann::json model_info;         // ModelInstanceInfo after the prediction
  nlohmann::json load_config;        // KVConfig
  nlohmann::json prediction_config;  // KVConfig
};

struct PredictionRequest {
  PromptInput prompt;
  GenerationOptions generation;  // min/max content tokens are taken from Settings
  std::optional<int64_t> max_tokens;  // nullopt or <0 = unlimited
  std::vector<std::string> stop_strings;
  std::string overflow_policy = "truncateMiddle";  // stopAtLimit | truncateMiddle | rollingWindow
  KvConfig prediction_config;  // echoed back in PredictionResult
};

// Prediction events, in order: OnPromptProgress(0), OnPromptProgress(1), then fragments / tool
// events, then exactly one OnDone. Called on the worker thread without locks; must not block.
class PredictionObserver {
 public:
  virtual ~PredictionObserver() = default;
  virtual void OnPromptProgress(double progress, int64_t prompt_tokens) {}
  virtual void OnFragment(const Fragment& fragment) = 0;
  virtual void OnToolCallStart(const ToolCall& call) {}
  virtual void OnToolCallName(const ToolCall& call) {}
  virtual void OnToolCallArguments(const std::string& fragment) {}
  virtual void OnToolCallEnd(const ToolCall& call, const std::string& raw) {}
  // Fault injection: sever the connection now (without a goodbye). The prediction then ends as
  // userStopped.
  virtual void OnDropConnection() {}
  virtual void OnDone(const PredictionResult& result) = 0;
};

enum class Interface { kSdk, kRestV0, kRestV1, kOpenAi, kCliStatus };

class Host {
 public:
  Host(Catalogue catalogue, Settings settings, Faults faults);
  ~Host();  // Shutdown()
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const Catalogue& catalogue() const { return catalogue_; }
  Settings settings() const;
  void SetSettings(const Settings& settings);
  Faults faults() const;
  void SetFaults(const Faults& faults);
  // Partial JSON updates (control endpoint shapes, see control.h).
  absl::Status ApplySettings(const nlohmann::json& update);
  absl::Status ApplyFaults(const nlohmann::json& update);

  // ---- work management
  std::shared_ptr<Job> NewJob();
  void Cancel(Job& job);
  // Runs `fn` on a new worker thread. After Shutdown() it is dropped (returns false).
  bool Spawn(std::function<void()> fn);
  // Cancels every wait, joins all workers. Idempotent. Observers may still be called while this
  // runs (work ends as cancelled).
  void Shutdown();

  // ---- non-blocking queries. `domain` is "llm", "embedding" or "" (any).
  nlohmann::json ListLoaded(const std::string& domain) const;
  // SDK ModelSpecifier ({type:"instanceReference"} or {type:"query"}) → a loaded instance.
  // NotFound carries SDK displayData (generic.noModelMatchingQuery / specificModelUnloaded).
  absl::StatusOr<InstanceHandle> FindBySpecifier(const nlohmann::json& specifier,
                                                 const std::string& domain) const;
  // Identifier / model key / key@quant → a loaded instance (no loading). NotFound if none.
  absl::StatusOr<InstanceHandle> FindLoaded(const std::string& name,
                                            const std::string& domain) const;
  nlohmann::json InstanceInfo(const InstanceHandle& instance) const;  // ModelInstanceInfo
  const ModelSpec& Spec(const InstanceHandle& instance) const;
  std::string Identifier(const InstanceHandle& instance) const;
  int64_t ContextLength(const InstanceHandle& instance) const;
  int Parallel(const InstanceHandle& instance) const;
  // The slot count the host reports (getLoadConfig, /api/v1): nullopt for an LLM loaded without
  // numParallelSessions while omit_default_parallel is on, and for embedding models.
  std::optional<int> ReportedParallel(const InstanceHandle& i) const;
  nlohmann::json LoadConfigJson(const InstanceHandle& instance) const;  // KVConfig
  nlohmann::json ProcessingState(const InstanceHandle& instance) const;  // {status, queued}
  // Unloads the instance with this identifier (loaded or loading). NotFound if none.
  absl::Status Unload(const std::string& identifier);
  // Downloaded models, each with its loaded instances: [{spec*, [instance infos]}].
  std::vector<std::pair<const ModelSpec*, std::vector<InstanceHandle>>> Models() const;
  // Fault: consumes one injected HTTP error if armed; returns its status.
  std::optional<int> TakeHttpErrorFault();
  // Fault: the JIT window error for `model_name`, if one is open.
  absl::Status CheckJitWindow(const std::string& model_name) const;

  // ---- blocking operations (worker threads only)
  // Explicit load (SDK loadModel, REST v1 load): never auto-evicts, no default TTL.
  absl::StatusOr<InstanceHandle> Load(const LoadRequest& request, LoadObserver* observer,
                                      Job* job);
  // SDK getOrLoad: an instance whose identifier/model key matches `request.model`, else a JIT load
  // (auto-evict, default JIT TTL when none given). Ignores Settings::jit_enabled.
  absl::StatusOr<InstanceHandle> GetOrLoad(const LoadRequest& request, LoadObserver* observer,
                                           Job* job);
  // HTTP inference model resolution, LM Studio's rules (§4, §6): empty name → the first loaded
  // model of `domain`; loaded instance; JIT load when enabled (TTL `ttl_ms` or the JIT default);
  // errors carry kPayloadHttpStatus and kPayloadErrorCode.
  absl::StatusOr<InstanceHandle> ResolveForInference(const std::string& model_name,
                                                     const std::string& domain,
                                                     std::optional<int64_t> ttl_ms,
                                                     LoadObserver* observer, Job* job);
  // Runs one prediction. Returns OK iff observer->OnDone was called (exactly once). Errors before
  // the prediction started (instance gone, prompt over the context with stopAtLimit) are returned.
  absl::Status Predict(const InstanceHandle& instance, const PredictionRequest& request,
                       PredictionObserver* observer, Job* job);
  // Embedding of one text; counts in `embeddings` and restarts the idle timer.
  absl::StatusOr<std::vector<float>> Embed(const InstanceHandle& instance,
                                           const std::string& text);

  // ---- counters
  void CountRequest(Interface iface);
  void OnWsOpened();
  void OnWsClosed();
  nlohmann::json Stats() const;
  void ResetStats();  // zeroes counters; gauges (active, open connections) are kept

 private:
  struct Counters {
    int64_t loads_started = 0, loads_finished = 0, loads_cancelled = 0, loads_failed = 0;
    int64_t unloads = 0, ttl_unloads = 0;
    int64_t predictions_started = 0, predictions_finished = 0, predictions_cancelled = 0;
    int64_t embeddings = 0, ws_connections_total = 0, http_errors_injected = 0;
    std::map<std::string, int64_t> requests;
  };
  struct ThreadEntry;

  bool Waiting(const Job* job) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  InstanceHandle FindInstanceLocked(const std::string& name, const std::string& domain,
                                    bool include_loading) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  nlohmann::json InstanceInfoLocked(const Instance& instance) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string AllocateIdentifierLocked(const ModelSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<InstanceHandle> StartLoadLocked(const ModelSpec& spec,
                                                 const LoadRequest& request, bool jit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WaitForLoadLocked(const InstanceHandle& instance, LoadObserver* observer,
                                 Job* job, bool abort_on_cancel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<InstanceHandle> EnsureLoadedLocked(const ModelSpec& spec,
                                                    const LoadRequest& request,
                                                    LoadObserver* observer, Job* job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictJitLocked(LoadObserver* observer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveInstanceLocked(const InstanceHandle& instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkJitWindowLocked(const ModelSpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunLoader(InstanceHandle instance, absl::Duration duration, int steps, bool fail);
  void RunReaper();
  // Releases mu_ around `fn` (observer calls must not hold it).
  template <typename Fn>
  void Unlocked(Fn&& fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    mu_.Unlock();
    fn();
    mu_.Lock();
  }

  const Catalogue catalogue_;
  mutable absl::Mutex mu_;
  Settings settings_ ABSL_GUARDED_BY(mu_);
  Faults faults_ ABSL_GUARDED_BY(mu_);
  std::vector<InstanceHandle> instances_ ABSL_GUARDED_BY(mu_);  // loading and loaded
  std::map<std::string, absl::Time> jit_window_until_ ABSL_GUARDED_BY(mu_);  // by model key
  Counters counters_ ABSL_GUARDED_BY(mu_);
  int64_t predictions_active_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t ws_open_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on changes the TTL reaper cares about
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex threads_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(threads_mu_);
  std::vector<uint64_t> finished_threads_ ABSL_GUARDED_BY(threads_mu_);
  uint64_t next_thread_id_ ABSL_GUARDED_BY(threads_mu_) = 0;
  bool threads_closed_ ABSL_GUARDED_BY(threads_mu_) = false;
  std::thread reaper_;
};

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_MODEL_HOST_H_
