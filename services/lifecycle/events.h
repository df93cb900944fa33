// EventBus: fan-out of model lifecycle events to WatchModels subscribers (and logs).
//
// Publishing never blocks on a subscriber: each subscriber has a bounded queue; when it is full
// the oldest event is dropped and the next delivered event says how many were lost.
//
// Several lmgates on one host (issue 14): a forwarder (SetForwarder) sees every event published
// here to share it with the others; an event another gateway published comes in through
// DeliverRemote, marked `remote`, and is never forwarded again. When this gateway's own host sync
// later finds what a remote event already announced (an EXTERNAL_CHANGE of the same instance to
// the same state), that event is marked `echo`: WatchModels skips it, so watchers see each
// change once, as what it was.
// Thread-safe.
#ifndef LMGATE_SERVICES_LIFECYCLE_EVENTS_H_
#define LMGATE_SERVICES_LIFECYCLE_EVENTS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/types.h"

namespace lmgate::lifecycle {

enum class State { kNotLoaded, kLoading, kReady, kUnloading, kFailed };

absl::string_view StateName(State s);

struct Event {
  enum class Kind {
    kSnapshot,
    kLoadStarted,
    kLoadProgress,
    kLoaded,
    kLoadFailed,
    kLoadCancelled,
    kUnloadStarted,
    kUnloaded,
    kExpired,
    kEvicted,
    kExternalChange,
  };
  Kind kind = Kind::kSnapshot;
  absl::Time time;
  std::string model_key;
  std::string instance;
  State state = State::kNotLoaded;
  double progress = 0;
  std::string reason;
  // The tenant whose call caused a load (LOAD_*, LOADED events); "" for lmgate's own loads
  // (pins) and when unknown.
  std::string tenant;
  absl::Duration duration;
  // kLoaded: the settings the instance was loaded with (InstanceSnapshot::load_config).
  std::optional<backends::LoadParams> load_config;
  uint64_t events_dropped = 0;
  // Published by another gateway of the host (DeliverRemote): this gateway's registry, logs,
  // metrics and health take no state from it; WatchModels streams it.
  bool remote = false;
  // An EXTERNAL_CHANGE of this gateway's sync that a remote event already announced.
  bool echo = false;
};

absl::string_view EventKindName(Event::Kind k);

class EventBus {
 public:
  using SubscriberId = uint64_t;
  // Called (without the bus lock) whenever the subscriber's queue goes from empty to non-empty.
  using WakeFn = std::function<void()>;

  explicit EventBus(size_t queue_limit = 1024) : queue_limit_(queue_limit) {}

  void Publish(Event e);

  // Called (without the bus lock, on the publisher's thread) with every event Publish takes,
  // after the subscribers have it; must not block. Null = none. Cluster mode sets it once.
  using ForwardFn = std::function<void(const Event&)>;
  void SetForwarder(ForwardFn fn);
  // Delivers an event another gateway published to the subscribers (marked remote); it is not
  // forwarded. Remembered for a while so this gateway's EXTERNAL_CHANGE of it becomes an echo.
  void DeliverRemote(Event e);

  // `filter_model`: only events of that model key ("" = all).
  SubscriberId Subscribe(std::string filter_model, WakeFn wake);
  void Unsubscribe(SubscriberId id);
  // Takes the next queued event of `id`; false if none.
  bool Next(SubscriberId id, Event* out);

 private:
  struct Subscriber {
    std::string filter;
    WakeFn wake;
    std::deque<Event> queue;
    uint64_t dropped = 0;
  };
  void Fanout(Event e);

  const size_t queue_limit_;
  absl::Mutex mu_;
  ForwardFn forward_ ABSL_GUARDED_BY(mu_);
  // Remote events by instance: the state announced and when (bounded; entries expire).
  std::map<std::string, std::pair<State, absl::Time>> announced_ ABSL_GUARDED_BY(mu_);
  SubscriberId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<SubscriberId, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_EVENTS_H_
