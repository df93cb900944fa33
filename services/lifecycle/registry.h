// ModelRegistry: lmgate owns model residency on the LM Studio host.
//
// - States per model and instance: NOT_LOADED → LOADING → READY → UNLOADING (+ FAILED with a
//   reason). An instance is READY only once a load has returned it, and turns UNLOADING before the
//   unload is sent, so nothing new is routed to it.
// - Acquire() is ensure-loaded: a request for a model with no READY instance starts ONE load
//   (single-flight per model and load configuration) and waits for it with everyone else; load
//   progress is reported to every waiter. When every waiter of a load is gone (cancelled, deadline)
//   and nobody else waits, the upstream load is cancelled.
// - A request holds a Lease on its instance while it runs. Unloading or evicting a leased instance
//   is refused with FAILED_PRECONDITION naming the holders, unless forced (then the holders are
//   told through their on_force_unload hook).
// - keep_loaded models are loaded without waiting for a request: after every successful sync that
//   finds one without a READY instance or a load (at start, after the host came back), through
//   the request path's single flight; a failed load is retried after a backoff.
// - Idle TTL per model (config, or set at run time: UpdatePolicy), pins (keep_loaded), capacity limits (loaded models / bytes) with
//   LRU eviction of idle unleased instances, or waiting for one to become idle.
// - The registry's view is synchronised with the host at start, every refresh_interval and when a
//   driver reports a missing model, so loads/unloads done in the LM Studio app are seen. An
//   instance found loaded of a model with a TTL or pin policy takes that policy, whoever loaded it
//   (the lmgate this one replaced); others keep LM Studio's own TTL, if any.
// - Names the host does not know cost almost nothing: concurrent re-reads of the host share one
//   listing call; a miss while the last listing is younger than `unknown_model_cache` is answered
//   NOT_FOUND at once (the listing is the negative cache: bounded by the host's catalogue and by
//   that age, nothing is kept per unknown name); an older listing is re-read by the maintenance
//   thread for every waiting miss at once. No thread is started and no state, event or flight is
//   created for a name the host does not have.
// Loads are sent without an upstream TTL: lmgate, not LM Studio, decides when an instance goes.
//
// Where: leases and last use live in a LeaseTable (lease_table.h; in-process here, a shared one
// may replace it), loads in flights (registry_flights.cc; who leads a load when several
// gateways share the host is the LoadFlights' call, flights.h), the host in HostOps (host_ops.h, one
// host per registry); the rest of the implementation is one file per concern (registry_*.cc).
// Time comes from RegistryOptions::clock.
//
// Thread-safe. Callbacks (done, progress) run on registry threads or inline in the caller's
// thread, never with the registry lock held; they must not block. Events are queued while the
// lock is held and delivered to the EventBus after it is released, in the order of the state
// changes they describe (EventOutbox): a subscriber may call into the registry from its callback.
#ifndef LMGATE_SERVICES_LIFECYCLE_REGISTRY_H_
#define LMGATE_SERVICES_LIFECYCLE_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/selector.h"
#include "services/admission/clock.h"
#include "services/lifecycle/event_outbox.h"
#include "services/lifecycle/events.h"
#include "services/lifecycle/flights.h"
#include "services/lifecycle/host_ops.h"
#include "services/lifecycle/lease_table.h"
#include "services/lifecycle/policies.h"

namespace lmgate::lifecycle {

struct RegistryOptions {
  // Re-read the host's model list this often (0 = only at start and on errors).
  absl::Duration refresh_interval = absl::Seconds(10);
  // Idle TTL of models without a policy TTL; unset = never expire.
  std::optional<absl::Duration> default_ttl;
  // Honour a request's ttl_hint for the load it causes.
  bool allow_client_ttl = false;
  // Per-model policies of the config file, and the default model (the gateway copies
  // GatewayOptions::default_model here). Both change at run time: UpdatePolicy, ReplaceFilePolicies.
  std::map<std::string, ModelPolicy> models;
  std::string default_model;
  // Capacity limits; 0 = unlimited.
  int max_loaded_models = 0;
  int64_t max_loaded_bytes = 0;
  // How often TTLs and waiter deadlines are checked.
  absl::Duration tick = absl::Milliseconds(250);
  // Timeout of one upstream load / unload / list call.
  absl::Duration load_timeout = absl::Minutes(10);
  absl::Duration host_call_timeout = absl::Seconds(30);
  // A model name the host did not list is NOT_FOUND without asking the host again while the last
  // listing attempt is younger than this (0 = every miss re-reads the host; concurrent re-reads
  // still share one call).
  absl::Duration unknown_model_cache = absl::Seconds(2);
  // The registry's time: idle TTLs, last use, the listing's age, pin retry backoffs, and the
  // maintenance thread's ticks (tests pass a SimulatedClock and move it). Host calls' deadlines
  // and callers' deadlines stay on real time (drivers and gRPC use it). Null = RealClock().
  // Must outlive the registry.
  admission::Clock* clock = nullptr;
  // The LM Studio host this registry manages (its base URL), named by every lease so that
  // admission keys an instance by host and identifier.
  std::string host = "default";
  // Makes the lease table (a shared one in cluster mode, services/cluster/cluster_leases.h);
  // null = the in-process LocalLeaseTable.
  std::function<std::unique_ptr<LeaseTable>()> lease_table;
  // Makes the flights' links to other gateways (shared single-flight loads in cluster mode,
  // services/cluster/cluster_flights.h); null = the in-process LocalFlights.
  std::function<std::unique_ptr<LoadFlights>()> load_flights;
};

struct InstanceSnapshot {
  backends::InstanceInfo info;
  State state = State::kNotLoaded;
  int in_flight = 0;
  bool keep_loaded = false;
  std::optional<absl::Duration> ttl;
  std::optional<absl::Time> last_used;
  std::vector<std::string> holders;  // request ids holding leases
  // Every setting the instance was loaded with: what lmgate sent (unset for what it left to the
  // host, and for instances loaded outside lmgate), then context length and parallel slots as
  // the host reports them, identifier and TTL.
  backends::LoadParams load_config;
  // Load() answers: how long the upstream load took; zero when an existing instance was answered.
  absl::Duration load_duration;
};

struct ModelSnapshot {
  backends::ModelInfo info;
  bool downloaded = true;  // false: seen loaded but not in the host's download list
  State state = State::kNotLoaded;
  std::string reason;
  double load_progress = 0;  // while LOADING
  std::vector<InstanceSnapshot> instances;
};

class ModelRegistry;

// A request's hold on one READY instance, from before it queues for one of the instance's slots
// until it completes (a queued request is a holder too). Releasing it (destruction) records the
// last use and lets waiting unloads/evictions proceed. Thread-compatible; destroy on any thread.
class Lease {
 public:
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  const std::string& model_key() const { return model_key_; }
  const std::string& instance() const { return instance_; }
  const std::string& instance_reference() const { return instance_reference_; }
  // The host the instance runs on (RegistryOptions::host).
  const std::string& host() const { return host_; }
  // The instance's parallel prediction slots as the host reported them (0 = unknown).
  int parallel_slots() const { return parallel_slots_; }
  // How long the acquirer waited for a load (zero if the instance was ready).
  absl::Duration load_wait() const { return load_wait_; }

 private:
  friend class ModelRegistry;
  Lease() = default;
  ModelRegistry* registry_ = nullptr;
  uint64_t id_ = 0;
  std::string model_key_;
  std::string instance_;
  std::string instance_reference_;
  std::string host_;
  int parallel_slots_ = 0;
  absl::Duration load_wait_;
};

struct AcquireRequest {
  // Model key or instance identifier.
  std::string model;
  // Request id, named to whoever tries to unload the instance meanwhile.
  std::string holder;
  // A request's TTL hint (applied only if allowed and this request causes the load).
  std::optional<absl::Duration> ttl_hint;
  // Driver used for a load this request causes (AUTO normally).
  DriverKind load_driver = DriverKind::kAuto;
  // Load progress 0..1 while this request waits for a load.
  std::function<void(double)> on_load_progress;
  // Runs if the instance is force-unloaded while this request holds it.
  std::function<void()> on_force_unload;
  // The tenant asking ("" = unknown), named in the events of a load this request causes.
  std::string tenant;
};

using AcquireDone = std::function<void(absl::StatusOr<std::unique_ptr<Lease>>)>;

class ModelRegistry {
 public:
  // Does an initial refresh (a host that is down only logs a warning) and starts the
  // maintenance thread. `host` and `events` must outlive the registry.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Create(RegistryOptions options,
                                                               HostOps* host, EventBus* events);
  ~ModelRegistry();

  // Ensure-loaded. `done` runs exactly once, possibly inline: with a lease on a READY instance,
  // or NOT_FOUND (not on the host), CANCELLED / DEADLINE_EXCEEDED (ctx), ABORTED (the load failed:
  // the host's reason), UNAVAILABLE (host unreachable). Never blocks.
  void Acquire(const CallContext& ctx, AcquireRequest request, AcquireDone done);
  // Blocking form for callers on worker threads.
  absl::StatusOr<std::unique_ptr<Lease>> AcquireBlocking(const CallContext& ctx,
                                                         AcquireRequest request);

  // Explicit load (LoadModel; `requested_by` is the tenant, named in the load's events). Without `new_instance`, an existing READY instance is returned at
  // once and a load in flight with the same settings is joined. Blocking.
  absl::StatusOr<InstanceSnapshot> Load(const CallContext& ctx, DriverKind driver,
                                        backends::LoadParams params, bool keep_loaded,
                                        bool new_instance,
                                        const std::function<void(double)>& progress,
                                        DriverKind* used, const std::string& requested_by = "");
  // Explicit unload of an instance identifier, or of a model key (one instance, or all with
  // `all_instances`). Returns the unloaded identifiers. Blocking. `requested_by` (the tenant that
  // asked, "" if unknown) goes into the events' reason; `*used` (if not null) gets the driver
  // that unloaded (the last one, for several instances).
  absl::StatusOr<std::vector<std::string>> Unload(const CallContext& ctx, DriverKind driver,
                                                  const std::string& model, bool all_instances,
                                                  bool force,
                                                  const std::string& requested_by = "",
                                                  DriverKind* used = nullptr);

  std::vector<ModelSnapshot> Snapshot() const;
  // NOT_FOUND with close matches.
  absl::StatusOr<ModelSnapshot> Get(const std::string& model) const;
  // Re-reads the host now (blocking). A call made while another re-read is in flight waits for
  // that one and returns its result instead of sending a second listing.
  absl::Status Refresh(const CallContext& ctx);
  // Refresh() unless the last listing attempt is younger than `unknown_model_cache`; then returns
  // that attempt's result without a host call. For lookups of a name the registry does not know.
  absl::Status RefreshIfStale(const CallContext& ctx);
  // Refresh() unless the last listing attempt started less than `max_age` ago (then that
  // attempt's result). Readiness re-reads the host this way every health interval.
  absl::Status RefreshIfOlder(const CallContext& ctx, absl::Duration max_age);
  // The model key `name` refers to, if the host or the config knows it (a listed or loaded model
  // key, an instance identifier, a `models` entry of the config); "" otherwise. What metrics and
  // health may name.
  std::string KnownModelKey(const std::string& name) const;
  // True when `model_key` is known and has a READY instance.
  bool ModelReady(const std::string& model_key) const;
  // Result of the last host sync (OK = the host answered). Readiness reads this.
  absl::Status host_status() const;
  // A driver said `instance` does not exist upstream: drop it and resync in the background.
  void ReportMissing(const std::string& instance);
  // Effective policy of a model key (file + run-time overlay; null if neither has one). The
  // returned snapshot stays valid while policies change.
  std::shared_ptr<const ModelPolicy> PolicyFor(const std::string& model_key) const {
    return policies_.For(model_key);
  }
  // The default model in force ("" = none).
  std::string default_model() const { return policies_.default_model(); }

  // A model's policy as UpdatePolicy answers it.
  struct PolicyView {
    std::string model_key;
    ModelPolicy policy;                   // effective
    bool is_default = false;              // the default model
    std::vector<std::string> overridden;  // fields set at run time (PolicyStore::Overridden)
  };
  // UpdateModelPolicy: `model` is a model key the host listed or the config names, or an
  // instance identifier (its model). NOT_FOUND otherwise. Instances of the model take the new
  // pin and TTL at once (a new TTL counts their idle time from now); a new pin loads the model
  // when it has no READY instance (as keep_loaded at start). An empty update returns the policy.
  absl::StatusOr<PolicyView> UpdatePolicy(const std::string& model, const PolicyUpdate& update,
                                          bool reset, bool make_default);
  // A reload's policies and default model (the run-time overlay stays on top; what it still
  // overrides is returned, "MODEL.FIELD"). Instances take changed pins and TTLs as above.
  std::vector<std::string> ReplaceFilePolicies(std::map<std::string, ModelPolicy> models,
                                               std::string default_model);
  EventBus* events() const { return events_; }

 private:
  friend class Lease;
  struct Waiter;
  struct Flight;
  struct InstanceEntry;
  struct ModelEntry;
  // Holds mu_ for a scope; releasing it delivers the events queued meanwhile (outside mu_).
  class Locked;

  ModelRegistry(RegistryOptions options, HostOps* host, EventBus* events);

  // Core (registry.cc): lookups, snapshots, events, the maintenance thread.
  absl::Time Now() const { return clock_->Now(); }
  CallContext HostContext(absl::Duration timeout) const;
  void MaintenanceLoop(absl::Time started);
  ModelEntry* FindModelLocked(const std::string& model_key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::pair<ModelEntry*, InstanceEntry*> FindInstanceLocked(const std::string& identifier)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  InstanceEntry* PickReadyLocked(ModelEntry& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NotFoundMessageLocked(const std::string& model) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  State ModelStateLocked(const ModelEntry& m) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  InstanceSnapshot SnapshotLocked(const InstanceEntry& inst) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  ModelSnapshot SnapshotLocked(const ModelEntry& m) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Queues an event (under mu_ or not); it is delivered when mu_ is next released through
  // Locked, or by outbox_.Flush() at a call site that does not hold mu_.
  void Publish(Event::Kind kind, const std::string& key, const std::string& instance, State state,
               std::string reason = "", double progress = 0,
               absl::Duration took = absl::ZeroDuration(), std::string tenant = "");

  // The lease table (registry_leases.cc).
  InstanceKey KeyOf(const InstanceEntry& inst) const;
  InstanceKey KeyOf(const std::string& identifier) const { return {options_.host, identifier}; }
  std::unique_ptr<Lease> MakeLeaseLocked(ModelEntry& m, InstanceEntry& inst, const Waiter& w,
                                         absl::Duration load_wait)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLease(const std::string& instance, uint64_t lease_id);

  // The waiter queue (registry_waiters.cc).
  // Routes a new waiter (lock held): a lease on a READY instance (`*lease`), a flight, a failure
  // (`*failed`, e.g. NOT_FOUND), or — `may_defer` and the listing is stale — the list of misses
  // the maintenance thread resolves after one re-read.
  void RouteLocked(const std::shared_ptr<Waiter>& waiter, bool may_defer,
                   std::unique_ptr<Lease>* lease, absl::Status* failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Routes the misses that waited for a re-read (maintenance thread).
  void ResolveUnknown();
  void RemoveWaiter(const std::shared_ptr<Waiter>& waiter, absl::Status why);
  // Calls the waiter's callback (never with mu_ held).
  void CompleteWaiter(const std::shared_ptr<Waiter>& waiter, absl::Status status,
                      std::unique_ptr<Lease> lease, InstanceSnapshot snapshot);
  void FailLateWaiters();

  // Flights, the single-flight loads (registry_flights.cc).
  void JoinOrStartFlightLocked(const std::string& model_key, backends::LoadParams params,
                               DriverKind driver, bool explicit_load, bool keep_loaded,
                               std::shared_ptr<Waiter> waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunFlight(std::shared_ptr<Flight> flight);
  // Joins the flight threads that finished (maintenance thread; never with mu_ held).
  void ReapFlightThreads() ABSL_LOCKS_EXCLUDED(mu_);
  void FinishFlight(const std::shared_ptr<Flight>& flight,
                    absl::StatusOr<backends::InstanceInfo> result, absl::Duration took,
                    DriverKind used);
  // The flight's link said nobody waits for it in any gateway: cancel it unless a waiter came.
  void AbandonFlight(const std::weak_ptr<Flight>& flight) ABSL_LOCKS_EXCLUDED(mu_);
  // Before a load that other gateways may have run meanwhile: re-reads the host and returns a
  // READY instance of the flight's model, if one is there now.
  std::optional<backends::InstanceInfo> ReadyAfterRefresh(const std::shared_ptr<Flight>& flight)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Capacity and eviction (registry_capacity.cc).
  absl::Status MakeRoomLocked(const std::shared_ptr<Flight>& flight, int64_t bytes,
                              std::vector<std::string>* evict) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Explicit load / unload (registry_load_unload.cc); UnloadOne is every unload's path.
  absl::Status UnloadOne(const CallContext& ctx, DriverKind driver, const std::string& id,
                         Event::Kind done_kind, const std::string& reason,
                         DriverKind* used = nullptr);

  // TTLs and pins (registry_ttl_pins.cc).
  void ExpireIdle();
  // Applies a changed pin / TTL of `key` to its instances (`before` = the policy they had).
  void ApplyPolicyLocked(const std::string& key, const ModelPolicy* before,
                         const ModelPolicy* after) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The idle TTL instances of a model with `policy` get (unset = never expire).
  std::optional<absl::Duration> TtlFor(const ModelPolicy* policy) const;
  // Starts a load for every keep_loaded model without a READY instance or a load in flight.
  void LoadPinned() ABSL_LOCKS_EXCLUDED(mu_);

  // Host sync (registry_host_sync.cc).
  void Reconcile(const backends::HostModels& host, absl::Time listed_at);
  // The last listing attempt is younger than unknown_model_cache.
  bool ListingFreshLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Identifiers of loaded instances (in `host`'s listing or known here) that are not their
  // model key: custom identifiers and "key:N".
  std::set<std::string> CustomIdentifiersLocked(const backends::HostModels& host) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RegistryOptions options_;
  admission::Clock* const clock_;
  PolicyStore policies_;
  HostOps* const host_;
  EventBus* const events_;
  // Mutable: every release of mu_ flushes, const readers included.
  mutable EventOutbox outbox_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<ModelEntry>> models_ ABSL_GUARDED_BY(mu_);
  // Every lease and last use (in-process; a shared table may replace it). Called under mu_.
  const std::unique_ptr<LeaseTable> leases_ ABSL_PT_GUARDED_BY(mu_);
  bool catalogue_known_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lease_id_ ABSL_GUARDED_BY(mu_) = 1;
  // One thread per flight (RunFlight), owned here: a finished one is joined by the maintenance
  // thread, the rest by the destructor, so no load thread outlives the registry.
  std::map<uint64_t, std::thread> flight_threads_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_flight_threads_ ABSL_GUARDED_BY(mu_);
  uint64_t next_flight_thread_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool refresh_wanted_ ABSL_GUARDED_BY(mu_) = false;
  // Host listing: one in flight at a time; `refresh_generation_` counts finished ones.
  bool refresh_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t refresh_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_refresh_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("not synced yet");
  std::optional<absl::Time> last_refresh_at_ ABSL_GUARDED_BY(mu_);  // start of the last attempt
  absl::Status shared_refresh_ ABSL_GUARDED_BY(mu_);  // the finished listing's answer, for joiners
  // Acquires of names not known at a stale listing, waiting for the next re-read.
  std::vector<std::shared_ptr<Waiter>> unresolved_ ABSL_GUARDED_BY(mu_);
  absl::Status host_status_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("not synced yet");
  // keep_loaded models' loads without a request (LoadPinned): one at a time per model, failures
  // retried by the maintenance loop after a doubling backoff (1 s .. 60 s, backends::Backoff).
  struct PinRetry {
    bool in_flight = false;
    int failures = 0;  // in a row
    absl::Time next = absl::InfinitePast();
  };
  std::map<std::string, PinRetry> pin_retry_ ABSL_GUARDED_BY(mu_);
  std::thread maintenance_;
  // Links flights to the other gateways (LocalFlights here). Last: destroyed first, after every
  // flight thread was joined, while the registry its `abandoned` calls reach is still whole.
  const std::unique_ptr<LoadFlights> load_flights_;
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_REGISTRY_H_
