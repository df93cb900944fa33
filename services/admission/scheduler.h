// FairScheduler: per-queue concurrency slots shared fairly between tenants; the in-process
// SlotScheduler (slots.h), used by a gateway without cluster.redis_url.
//
// A queue is named by a key (the gateway uses one per model instance: host + identifier, after
// the request's name was resolved) and has the `concurrency` its latest submitted ticket carries
// (the instance's own parallel slots). A request takes a slot at once if one is free and nobody
// waits; otherwise it queues. When a slot frees, the next request is chosen by
// - priority class first (HIGH > NORMAL > LOW), where a queued request gains one class per
//   `aging` interval it has waited, so nothing starves;
// - then weighted fair queueing between tenants (start-time fair queueing: each tenant has a
//   virtual time advanced by 1/weight per admitted request), so tenants with weights 1:1:2 that
//   all keep the model busy get 25%:25%:50% of the admissions, and a flooding tenant cannot push
//   another tenant's wait past its fair share;
// - FIFO within a tenant and class.
// A queue exists while it has running or queued requests; an idle one is dropped, so no key
// leaves state behind. Each queue is bounded (RESOURCE_EXHAUSTED with a retry hint when full); a request
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
#include "services/admission/clock.h"
#include "services/admission/slots.h"

namespace lmgate::admission {

struct SchedulerOptions {
  // Slots of a queue whose tickets carry no concurrency (an instance that reports no parallel
  // slots).
  int default_concurrency = 4;
  // Requests running at once over all queues; 0 = unlimited. When it binds, a freed slot goes to
  // the queue whose waiting request has the highest class, then waited longest.
  int max_concurrent_total = 0;
  // Queued requests per queue beyond which new ones are refused.
  int max_queue = 256;
  // Longest time a request may wait in the queue.
  absl::Duration queue_timeout = absl::Seconds(60);
  // A queued request rises one priority class per `aging` waited.
  absl::Duration aging = absl::Seconds(10);
  // How often queue timeouts and deadlines are checked.
  absl::Duration tick = absl::Milliseconds(50);
  // Time of queue waits, aging, timeouts and deadlines (the timer thread waits on it); null =
  // RealClock(). Must outlive the scheduler.
  Clock* clock = nullptr;
};

class FairScheduler : public SlotScheduler {
 public:
  explicit FairScheduler(SchedulerOptions options);
  ~FairScheduler() override;  // fails queued requests with UNAVAILABLE

  // `admit` runs exactly once: with a slot, or RESOURCE_EXHAUSTED (queue full, queue timeout),
  // DEADLINE_EXCEEDED, CANCELLED (the ticket's token) or UNAVAILABLE (the scheduler is destroyed).
  void Submit(Ticket ticket, AdmitFn admit, PositionFn position = nullptr) override;

  using QueueStats = admission::QueueStats;
  QueueStats Stats(const std::string& key) const;
  // Every queue that has running or queued requests, by key.
  std::map<std::string, QueueStats> AllStats() const override;

 private:
  struct Item;
  struct TenantQueue;
  struct Queue;

  Queue& QueueLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `key`'s queue when nothing runs or waits there.
  void EraseIfIdleLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the next request that may run now, or nullptr.
  std::shared_ptr<Item> PickLocked(Queue& q, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<Slot> MakeSlotLocked(Queue& q, const Item& item, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& key);
  // Admits what the per-queue and global limits allow now; returns (item, slot) pairs to notify.
  std::vector<std::pair<std::shared_ptr<Item>, std::unique_ptr<Slot>>> DispatchLocked(
      Queue* preferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GlobalFullLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Remove(const std::shared_ptr<Item>& item, absl::Status why);
  // Fails queued requests past their deadline or queue timeout, every `tick` from `next` on.
  void TimerLoop(absl::Time next);

  const SchedulerOptions options_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Queue>> queues_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int total_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::thread timer_;
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_SCHEDULER_H_
