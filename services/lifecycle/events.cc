#include "services/lifecycle/events.h"

#include <utility>
#include <vector>

namespace lmgate::lifecycle {

absl::string_view StateName(State s) {
  switch (s) {
    case State::kNotLoaded:
      return "NOT_LOADED";
    case State::kLoading:
      return "LOADING";
    case State::kReady:
      return "READY";
    case State::kUnloading:
      return "UNLOADING";
    case State::kFailed:
      return "FAILED";
  }
  return "?";
}

absl::string_view EventKindName(Event::Kind k) {
  switch (k) {
    case Event::Kind::kSnapshot:
      return "snapshot";
    case Event::Kind::kLoadStarted:
      return "load_started";
    case Event::Kind::kLoadProgress:
      return "load_progress";
    case Event::Kind::kLoaded:
      return "loaded";
    case Event::Kind::kLoadFailed:
      return "load_failed";
    case Event::Kind::kLoadCancelled:
      return "load_cancelled";
    case Event::Kind::kUnloadStarted:
      return "unload_started";
    case Event::Kind::kUnloaded:
      return "unloaded";
    case Event::Kind::kExpired:
      return "expired";
    case Event::Kind::kEvicted:
      return "evicted";
    case Event::Kind::kExternalChange:
      return "external_change";
  }
  return "?";
}

void EventBus::Publish(Event e) {
  if (e.time == absl::Time()) e.time = absl::Now();
  std::vector<WakeFn> to_wake;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, s] : subscribers_) {
      if (!s.filter.empty() && s.filter != e.model_key) continue;
      if (s.queue.size() >= queue_limit_) {
        s.queue.pop_front();
        ++s.dropped;
      }
      const bool was_empty = s.queue.empty();
      s.queue.push_back(e);
      if (was_empty && s.wake) to_wake.push_back(s.wake);
    }
  }
  for (auto& w : to_wake) w();
}

EventBus::SubscriberId EventBus::Subscribe(std::string filter_model, WakeFn wake) {
  absl::MutexLock lock(&mu_);
  SubscriberId id = next_id_++;
  subscribers_[id] = Subscriber{std::move(filter_model), std::move(wake), {}, 0};
  return id;
}

void EventBus::Unsubscribe(SubscriberId id) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
}

bool EventBus::Next(SubscriberId id, Event* out) {
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end() || it->second.queue.empty()) return false;
  *out = std::move(it->second.queue.front());
  it->second.queue.pop_front();
  out->events_dropped = it->second.dropped;
  it->second.dropped = 0;
  return true;
}

}  // namespace lmgate::lifecycle
