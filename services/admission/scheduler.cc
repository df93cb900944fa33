#include "services/admission/scheduler.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/admission/retry_after.h"

namespace lmgate::admission {

struct FairScheduler::Item {
  Ticket ticket;
  AdmitFn admit;
  absl::Time enqueued;
  uint64_t seq = 0;
  bool done = false;  // guarded by mu_
  // Registered after the item is queued, where another thread may admit or remove it first.
  backends::CancelRegistration cancel;
  std::atomic<bool> cancelled_inline{false};  // set by the cancel callback itself
};

struct FairScheduler::TenantQueue {
  double weight = 1;
  double vtime = 0;  // start tag of this tenant's next request
  std::deque<std::shared_ptr<Item>> items;
};

struct FairScheduler::Queue {
  std::string key;
  int concurrency = 0;
  int in_use = 0;
  int queued = 0;
  double vclock = 0;  // start tag of the request admitted last
  uint64_t next_seq = 0;
  std::map<std::string, TenantQueue> tenants;
};


FairScheduler::FairScheduler(SchedulerOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {
  // The first check's time is taken here, not when the thread happens to start.
  const absl::Time first = clock_->Now() + options_.tick;
  timer_ = std::thread([this, first] { TimerLoop(first); });
}

FairScheduler::~FairScheduler() {
  std::vector<std::shared_ptr<Item>> queued;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [k, q] : queues_) {
      for (auto& [t, tq] : q->tenants) {
        for (auto& item : tq.items) queued.push_back(item);
      }
    }
  }
  for (auto& item : queued) Remove(item, absl::UnavailableError("lmgate is shutting down"));
  timer_.join();
  alive_.reset();
}

FairScheduler::Queue& FairScheduler::QueueLocked(const std::string& key) {
  auto& q = queues_[key];
  if (!q) {
    q = std::make_unique<Queue>();
    q->key = key;
    q->concurrency = options_.default_concurrency;
  }
  return *q;
}

void FairScheduler::EraseIfIdleLocked(const std::string& key) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return;
  const Queue& q = *it->second;
  if (q.in_use == 0 && q.queued == 0) queues_.erase(it);
}

bool FairScheduler::GlobalFullLocked() const {
  return options_.max_concurrent_total > 0 && total_in_use_ >= options_.max_concurrent_total;
}

std::unique_ptr<Slot> FairScheduler::MakeSlotLocked(Queue& q, const Item& item,
                                                    absl::Time now) {
  ++q.in_use;
  ++total_in_use_;
  // A slot may outlive the scheduler (then releasing it does nothing), but not be destroyed
  // concurrently with it.
  std::weak_ptr<int> alive = alive_;
  return Slot::Create(
      [this, alive, key = q.key] {
        if (!alive.expired()) Release(key);
      },
      now - item.enqueued);
}

std::shared_ptr<FairScheduler::Item> FairScheduler::PickLocked(Queue& q, absl::Time now) {
  if (q.in_use >= q.concurrency || q.queued == 0 || GlobalFullLocked()) return nullptr;
  TenantQueue* best = nullptr;
  int best_class = -1;
  for (auto& [name, tq] : q.tenants) {
    if (tq.items.empty()) continue;
    const Item& head = *tq.items.front();
    int cls = static_cast<int>(head.ticket.priority);
    if (options_.aging > absl::ZeroDuration()) {
      cls += static_cast<int>((now - head.enqueued) / options_.aging);
    }
    if (best == nullptr || cls > best_class ||
        (cls == best_class && (tq.vtime < best->vtime ||
                               (tq.vtime == best->vtime && head.seq < best->items.front()->seq)))) {
      best = &tq;
      best_class = cls;
    }
  }
  if (best == nullptr) return nullptr;
  std::shared_ptr<Item> item = best->items.front();
  best->items.pop_front();
  --q.queued;
  q.vclock = best->vtime;
  best->vtime += 1.0 / best->weight;
  item->done = true;
  return item;
}

void FairScheduler::Submit(Ticket ticket, AdmitFn admit, PositionFn position) {
  if (!(ticket.weight > 0)) ticket.weight = 1;
  auto item = std::make_shared<Item>();
  item->ticket = std::move(ticket);
  item->admit = std::move(admit);
  std::unique_ptr<Slot> slot;
  absl::Status refused;
  int pos = 0;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    item->enqueued = now;
    Queue& q = QueueLocked(item->ticket.key);
    q.concurrency =
        item->ticket.concurrency > 0 ? item->ticket.concurrency : options_.default_concurrency;
    if (stopping_) {
      refused = absl::UnavailableError("lmgate is shutting down");
      EraseIfIdleLocked(q.key);
    } else if (q.in_use < q.concurrency && q.queued == 0 && !GlobalFullLocked()) {
      item->done = true;
      slot = MakeSlotLocked(q, *item, now);
    } else if (q.queued >= options_.max_queue) {
      // A full queue drains within about one queue timeout.
      refused = WithRetryAfter(absl::ResourceExhaustedError(absl::StrCat(
                                   "the queue for ", q.key, " is full (", q.queued, " waiting, ",
                                   q.in_use, " running); retry in a few seconds")),
                               options_.queue_timeout);
    } else {
      item->seq = q.next_seq++;
      TenantQueue& tq = q.tenants[item->ticket.tenant];
      tq.weight = item->ticket.weight;
      if (tq.items.empty()) tq.vtime = std::max(tq.vtime, q.vclock);
      tq.items.push_back(item);
      pos = ++q.queued;
    }
  }
  if (slot) {
    item->admit(std::move(slot));
    return;
  }
  if (!refused.ok()) {
    item->admit(refused);
    return;
  }
  std::weak_ptr<Item> weak = item;
  item->cancel.Register(item->ticket.cancel, [this, weak] {
    if (auto it = weak.lock()) {
      it->cancelled_inline = true;
      Remove(it, absl::CancelledError("the call was cancelled while queued"));
    }
  });
  if (position) position(pos);
}

std::vector<std::pair<std::shared_ptr<FairScheduler::Item>, std::unique_ptr<Slot>>>
FairScheduler::DispatchLocked(Queue* preferred) {
  std::vector<std::pair<std::shared_ptr<Item>, std::unique_ptr<Slot>>> admitted;
  const absl::Time now = clock_->Now();
  if (preferred != nullptr) {
    while (auto item = PickLocked(*preferred, now)) {
      auto slot = MakeSlotLocked(*preferred, *item, now);
      admitted.emplace_back(std::move(item), std::move(slot));
    }
  }
  if (options_.max_concurrent_total <= 0) return admitted;
  // Global capacity freed: serve other models too, oldest waiting head first.
  while (!GlobalFullLocked()) {
    Queue* best = nullptr;
    absl::Time oldest = absl::InfiniteFuture();
    for (auto& [k, q] : queues_) {
      if (q->in_use >= q->concurrency || q->queued == 0) continue;
      for (auto& [t, tq] : q->tenants) {
        if (!tq.items.empty() && tq.items.front()->enqueued < oldest) {
          oldest = tq.items.front()->enqueued;
          best = q.get();
        }
      }
    }
    if (best == nullptr) break;
    auto item = PickLocked(*best, now);
    if (!item) break;
    auto slot = MakeSlotLocked(*best, *item, now);
    admitted.emplace_back(std::move(item), std::move(slot));
  }
  return admitted;
}

void FairScheduler::Release(const std::string& key) {
  std::vector<std::pair<std::shared_ptr<Item>, std::unique_ptr<Slot>>> admitted;
  {
    absl::MutexLock lock(&mu_);
    Queue& q = QueueLocked(key);
    --q.in_use;
    --total_in_use_;
    admitted = DispatchLocked(&q);
    EraseIfIdleLocked(key);
  }
  for (auto& [item, slot] : admitted) {
    item->cancel.Complete(/*from_callback=*/item->cancelled_inline);
    item->admit(std::move(slot));
  }
}

void FairScheduler::Remove(const std::shared_ptr<Item>& item, absl::Status why) {
  {
    absl::MutexLock lock(&mu_);
    if (item->done) return;
    item->done = true;
    Queue& q = QueueLocked(item->ticket.key);
    auto& items = q.tenants[item->ticket.tenant].items;
    items.erase(std::remove(items.begin(), items.end(), item), items.end());
    --q.queued;
    EraseIfIdleLocked(item->ticket.key);
  }
  item->cancel.Complete(/*from_callback=*/item->cancelled_inline);
  item->admit(std::move(why));
}

FairScheduler::QueueStats FairScheduler::Stats(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = queues_.find(key);
  if (it == queues_.end()) return {0, 0, options_.default_concurrency};
  return {it->second->in_use, it->second->queued, it->second->concurrency};
}

std::map<std::string, FairScheduler::QueueStats> FairScheduler::AllStats() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, QueueStats> out;
  for (const auto& [k, q] : queues_) out[k] = {q->in_use, q->queued, q->concurrency};
  return out;
}

void FairScheduler::TimerLoop(absl::Time next) {
  // The next check is due one tick after the last one's time (not after the wait started), so
  // time that moved meanwhile (a simulated clock's Advance) is never waited for twice.
  for (;;) {
    std::vector<std::pair<std::shared_ptr<Item>, absl::Status>> expired;
    {
      absl::MutexLock lock(&mu_);
      clock_->AwaitUntil(&mu_, absl::Condition(&stopping_), next);
      if (stopping_) return;
      const absl::Time now = clock_->Now();
      next = now + options_.tick;
      for (auto& [k, q] : queues_) {
        for (auto& [t, tq] : q->tenants) {
          for (auto& item : tq.items) {
            if (now >= item->ticket.deadline) {
              expired.emplace_back(item, absl::DeadlineExceededError(
                                             "the deadline passed while the request was queued"));
            } else if (now - item->enqueued >= options_.queue_timeout) {
              expired.emplace_back(
                  item, WithRetryAfter(absl::ResourceExhaustedError(absl::StrCat(
                                           "queued for ", absl::FormatDuration(options_.queue_timeout),
                                           " behind ", q->in_use, " running requests for ",
                                           q->key, "; retry later")),
                                       options_.queue_timeout));
            }
          }
        }
      }
    }
    for (auto& [item, st] : expired) Remove(item, st);
  }
}

}  // namespace lmgate::admission
