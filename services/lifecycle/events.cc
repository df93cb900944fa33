#include "services/lifecycle/events.h"

#include <iterator>
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

namespace {
// How long a remote event turns the local sync's EXTERNAL_CHANGE of it into an echo, and how many
// instances are remembered.
constexpr absl::Duration kAnnouncedFor = absl::Minutes(5);
constexpr size_t kAnnouncedMax = 1024;
}  // namespace

void EventBus::SetForwarder(ForwardFn fn) {
  absl::MutexLock lock(&mu_);
  forward_ = std::move(fn);
}

void EventBus::Publish(Event e) {
  if (e.time == absl::Time()) e.time = absl::Now();
  ForwardFn forward;
  {
    absl::MutexLock lock(&mu_);
    forward = forward_;
    if (e.kind == Event::Kind::kExternalChange) {
      auto it = announced_.find(e.instance);
      if (it != announced_.end() && it->second.first == e.state &&
          absl::Now() - it->second.second < kAnnouncedFor) {
        e.echo = true;
        e.reason += "; announced by another lmgate of this host";
        announced_.erase(it);
      }
    }
  }
  // Every gateway's sync sees outside changes itself, so those are not shared.
  const bool share = forward && !e.echo && e.kind != Event::Kind::kExternalChange &&
                     e.kind != Event::Kind::kSnapshot;
  if (!share) {
    Fanout(std::move(e));
    return;
  }
  Fanout(e);
  forward(e);
}

void EventBus::DeliverRemote(Event e) {
  e.remote = true;
  if (e.time == absl::Time()) e.time = absl::Now();
  if (!e.instance.empty() && e.kind != Event::Kind::kLoadProgress &&
      e.kind != Event::Kind::kLoadStarted) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (auto it = announced_.begin(); it != announced_.end();) {
      it = now - it->second.second >= kAnnouncedFor ? announced_.erase(it) : std::next(it);
    }
    if (announced_.size() < kAnnouncedMax) announced_[e.instance] = {e.state, now};
  }
  Fanout(std::move(e));
}

void EventBus::Fanout(Event e) {
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
