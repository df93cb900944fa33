// Lifecycle events shared by every lmgate in front of one LM Studio host (issue 14): what one
// gateway publishes on its EventBus (LOAD_STARTED, PROGRESS, LOADED, LOAD_FAILED, UNLOADED,
// EXPIRED, EVICTED, ...) reaches WatchModels on every other gateway within milliseconds, as
// itself rather than as a later EXTERNAL_CHANGE.
//
// Publishing: the bus's forwarder queues each local event (bounded, oldest dropped; never blocks
// the registry) and a thread PUBLISHes it as JSON on lmgate:{<ns>}:events. Receiving: a
// RedisSubscriber on that channel hands every other gateway's event to EventBus::DeliverRemote
// (marked remote: not forwarded again, not taken as this gateway's state; its own sync still
// reconciles with the host). Events published while Redis is unreachable are lost for the other
// gateways (they see the change at their next sync, as before).
//
// Thread-safe; the destructor detaches from the bus and joins both threads.
#ifndef LMGATE_SERVICES_CLUSTER_SHARED_EVENTS_H_
#define LMGATE_SERVICES_CLUSTER_SHARED_EVENTS_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/cluster/redis.h"
#include "services/lifecycle/events.h"

namespace lmgate::cluster {

struct SharedEventsOptions {
  std::string ns;          // names the LM Studio host
  std::string gateway_id;  // unique per process: its own messages are skipped
  size_t queue_limit = 1024;
};

// The wire form of an event (JSON with the publishing gateway's id); nullopt for a payload that
// is not one (another version's, garbage).
std::string EncodeEvent(const lifecycle::Event& e, const std::string& gateway_id);
std::optional<lifecycle::Event> DecodeEvent(const std::string& payload, std::string* gateway_id);

class SharedEvents {
 public:
  // `client` (publishing) and `bus` must outlive this; the subscriber has its own connection.
  SharedEvents(RedisClient* client, lifecycle::EventBus* bus, SharedEventsOptions options);
  ~SharedEvents();
  SharedEvents(const SharedEvents&) = delete;
  SharedEvents& operator=(const SharedEvents&) = delete;

  // The subscription is live (false until the first SUBSCRIBE, and while Redis is away).
  bool subscribed() const;
  int64_t published() const;
  int64_t dropped() const;  // queue full, or Redis failed

 private:
  void Enqueue(const lifecycle::Event& e);
  void PublishLoop();
  void OnMessage(const std::string& payload);

  RedisClient* const client_;
  lifecycle::EventBus* const bus_;
  const SharedEventsOptions options_;
  const std::string channel_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread publisher_;
  std::unique_ptr<RedisSubscriber> subscriber_;
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_SHARED_EVENTS_H_
