// FairScheduler: per-model concurrency slots shared fairly between tenants.
//
// Each model (any string key) has `concurrency` slots. A request takes a slot at once if one is
// free and nobody waits; otherwise it queues. When a slot frees, the next request is chosen by
// - priority class first (HIGH > NORMAL > LOW), where a queued request gains one class per
//   `aging` interval it has waited, so nothing starves;
// - then weighted fair queueing between tenants (start-time fair queueing: each tenant has a
//   virtual time advanced by 1/weight per admitted request), so tenants with weights 1:1:2 that
//   all keep the model busy get 25%:25%:50% of the admissions, and a flooding tenant cannot push
//   another tenant's wait past its fair share;
// - FIFO within a tenant and class.
// A model's queue exists while it has running or queued requests, or once SetConcurrency() named
// the model; an idle queue of any other name is dropped, so caller-chosen names leave no state.
// The queue per model is bounded (RESOURCE_EXHAUSTED with a retry hint when full); a request
// waits at most `queue_timeout` (RESOURCE_EXHAUSTED) and never past its own deadline
// (DEADLINE_EXCEEDED); cancelling its token removes it (CANCELLED).
//
// Thread-safe. Callbacks run without the scheduler lock, on the submitting thread (immediate
// admission or rejection), the thread releasing a slot, a cancelling thread, or the scheduler's
// timer thread. They must not block.
#ifndef LMGATE_SERVICES_ADMISSION_SCHEDULER_H_
#define LMGATE_SERVICES_ADMISSION_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"

namespace lmgate::admission {

enum class Priority { kLow = 0, kNormal = 1, kHigh = 2 };

struct SchedulerOptions {
  // Slots per model unless SetConcurrency() says otherwise.
  int default_concurrency = 4;
  // Requests running at once over all models; 0 = unlimited. When it binds, a freed slot goes to
  // the model whose waiting request has the highest class, then waited longest.
  int max_concurrent_total = 0;
  // Queued requests per model beyond which new ones are refused.
  int max_queue = 256;
  // Longest time a request may wait in the queue.
  absl::Duration queue_timeout = absl::Seconds(60);
  // A queued request rises one priority class per `aging` waited.
  absl::Duration aging = absl::Seconds(10);
  // How often queue timeouts and deadlines are checked.
  absl::Duration tick = absl::Milliseconds(50);
};

class FairScheduler;

// A held slot; destroying it frees the slot and admits the next request. A slot may outlive its
// scheduler (then destroying it does nothing), but not be destroyed concurrently with it.
class Slot {
 public:
  ~Slot();
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  absl::Duration queue_wait() const { return queue_wait_; }

 private:
  friend class FairScheduler;
  Slot() = default;
  FairScheduler* scheduler_ = nullptr;
  std::weak_ptr<int> alive_;
  std::string model_;
  absl::Duration queue_wait_;
};

struct Ticket {
  std::string model;
  std::string tenant;
  double weight = 1;  // > 0
  Priority priority = Priority::kNormal;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<backends::CancelToken> cancel;  // may be null
};

using AdmitFn = std::function<void(absl::StatusOr<std::unique_ptr<Slot>>)>;
// Queue position (1-based) when the request has to wait.
using PositionFn = std::function<void(int)>;

class FairScheduler {
 public:
  explicit FairScheduler(SchedulerOptions options);
  ~FairScheduler();  // fails queued requests with UNAVAILABLE

  void Submit(Ticket ticket, AdmitFn admit, PositionFn position = nullptr);
  // Slots of `model` (e.g. the instance's parallel slots); takes effect on the next admission.
  // Call it only for models that exist (the gateway does, for loaded ones): the queue is kept.
  void SetConcurrency(const std::string& model, int slots);

  struct ModelStats {
    int in_use = 0;
    int queued = 0;
    int concurrency = 0;
  };
  ModelStats Stats(const std::string& model) const;
  std::map<std::string, ModelStats> AllStats() const;

 private:
  struct Item;
  struct TenantQueue;
  struct ModelQueue;
  friend class Slot;

  ModelQueue& ModelLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `model`'s queue when nothing runs or waits there and SetConcurrency() never named it.
  void EraseIfIdleLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the next request that may run now, or nullptr.
  std::shared_ptr<Item> PickLocked(ModelQueue& q, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<Slot> MakeSlotLocked(ModelQueue& q, const Item& item, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& model);
  // Admits what the per-model and global limits allow now; returns (item, slot) pairs to notify.
  std::vector<std::pair<std::shared_ptr<Item>, std::unique_ptr<Slot>>> DispatchLocked(
      ModelQueue* preferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GlobalFullLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Remove(const std::shared_ptr<Item>& item, absl::Status why);
  void TimerLoop();

  const SchedulerOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<ModelQueue>> models_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int total_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::thread timer_;
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_SCHEDULER_H_
