#include "services/lifecycle/event_outbox.h"

#include <utility>

namespace lmgate::lifecycle {

void EventOutbox::Add(Event e) {
  if (e.time == absl::Time()) e.time = absl::Now();
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(e));
}

void EventOutbox::Flush() {
  {
    absl::MutexLock lock(&mu_);
    if (flushing_) return;  // that thread delivers ours too, after its own
    flushing_ = true;
  }
  for (;;) {
    Event e;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        flushing_ = false;  // checked and cleared under one lock: no Add is left behind
        return;
      }
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    bus_->Publish(std::move(e));
  }
}

}  // namespace lmgate::lifecycle
