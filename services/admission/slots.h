// SlotScheduler: the narrow interface behind which a request waits for a slot of a model
// instance (issue 14). The gateway (services/gateway/grant.h) talks only to it; there are two
// implementations:
// - admission::FairScheduler (scheduler.h): in-process queues, one gateway;
// - cluster::ClusterSlots (services/cluster/cluster_slots.h): one queue per instance shared by
//   every lmgate of the host through Redis, chosen when cluster.redis_url is set.
// Both order waiting requests the same way: priority class with aging, then weighted fair share
// between tenants, then FIFO; both grant at most a ticket's `concurrency` slots per key.
//
// Contract: Submit never blocks (a gRPC reaction may call it) and `admit` runs exactly once,
// never under a lock of the scheduler: with a Slot, or RESOURCE_EXHAUSTED (queue full, queue
// timeout), DEADLINE_EXCEEDED, CANCELLED (the ticket's token), UNAVAILABLE (shutting down; the
// shared store unreachable and cluster.on_redis_error=closed). Destroying the Slot frees it
// exactly once and admits the next waiter; it never blocks either.
#ifndef LMGATE_SERVICES_ADMISSION_SLOTS_H_
#define LMGATE_SERVICES_ADMISSION_SLOTS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/driver.h"

namespace lmgate::admission {

enum class Priority { kLow = 0, kNormal = 1, kHigh = 2 };

struct Ticket {
  // The queue: one per instance in the gateway ("host|identifier").
  std::string key;
  // Slots of the queue (the instance's parallel slots); <= 0 = the scheduler's default. The
  // latest submission's value is the queue's concurrency from then on.
  int concurrency = 0;
  std::string tenant;
  double weight = 1;  // > 0
  Priority priority = Priority::kNormal;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<backends::CancelToken> cancel;  // may be null
};

// A held slot; destroying it runs its release once (the implementation's: free the slot, admit
// the next request). Thread-compatible; a release must not block.
class Slot {
 public:
  // For SlotScheduler implementations.
  static std::unique_ptr<Slot> Create(std::function<void()> release, absl::Duration queue_wait) {
    return std::unique_ptr<Slot>(new Slot(std::move(release), queue_wait));
  }
  ~Slot() {
    if (release_) release_();
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  absl::Duration queue_wait() const { return queue_wait_; }

 private:
  Slot(std::function<void()> release, absl::Duration queue_wait)
      : release_(std::move(release)), queue_wait_(queue_wait) {}
  std::function<void()> release_;
  absl::Duration queue_wait_;
};

using AdmitFn = std::function<void(absl::StatusOr<std::unique_ptr<Slot>>)>;
// Queue position (1-based) when the request has to wait.
using PositionFn = std::function<void(int)>;

struct QueueStats {
  int in_use = 0;
  int queued = 0;
  int concurrency = 0;
};

class SlotScheduler {
 public:
  virtual ~SlotScheduler() = default;
  // See the header comment.
  virtual void Submit(Ticket ticket, AdmitFn admit, PositionFn position = nullptr) = 0;
  // Every queue that has running or queued requests of this gateway, by key (metrics).
  virtual std::map<std::string, QueueStats> AllStats() const = 0;
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_SLOTS_H_
