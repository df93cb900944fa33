// EventOutbox: lifecycle events queued while a component's lock is held, delivered to an
// EventBus after it is released, in the order they were queued.
//
// A component calls Add() under its own lock (the order of Adds is the order of its state
// changes) and Flush() after unlocking. One thread at a time delivers (the flusher): a Flush()
// that finds another thread delivering returns at once, and that thread delivers what was added
// meanwhile before it stops, so two threads never reorder events and no subscriber callback runs
// inside the component's critical section. A subscriber may call back into the component (which
// adds and flushes again) from its callback: the nested Flush() returns and the outer one
// delivers. Consequence: an event is delivered before the Flush() that follows its Add() returns
// unless another thread is delivering at that moment; then shortly after, by that thread.
// Thread-safe.
#ifndef LMGATE_SERVICES_LIFECYCLE_EVENT_OUTBOX_H_
#define LMGATE_SERVICES_LIFECYCLE_EVENT_OUTBOX_H_

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/lifecycle/events.h"

namespace lmgate::lifecycle {

class EventOutbox {
 public:
  // `bus` must outlive the outbox.
  explicit EventOutbox(EventBus* bus) : bus_(bus) {}

  // Queues `e` (time-stamped now if unset). Cheap; safe under any lock.
  void Add(Event e);
  // Delivers every queued event unless another thread is doing so. Call without holding locks
  // that a subscriber might take.
  void Flush();

 private:
  EventBus* const bus_;
  absl::Mutex mu_;
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_EVENT_OUTBOX_H_
