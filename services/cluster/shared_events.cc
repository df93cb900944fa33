#include "services/cluster/shared_events.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/json.h"
#include "spdlog/spdlog.h"

namespace lmgate::cluster {
namespace {

using lifecycle::Event;
using lifecycle::State;

constexpr Event::Kind kKinds[] = {
    Event::Kind::kSnapshot,      Event::Kind::kLoadStarted,   Event::Kind::kLoadProgress,
    Event::Kind::kLoaded,        Event::Kind::kLoadFailed,    Event::Kind::kLoadCancelled,
    Event::Kind::kUnloadStarted, Event::Kind::kUnloaded,      Event::Kind::kExpired,
    Event::Kind::kEvicted,       Event::Kind::kExternalChange};

constexpr State kStates[] = {State::kNotLoaded, State::kLoading, State::kReady, State::kUnloading,
                             State::kFailed};

}  // namespace

std::string EncodeEvent(const Event& e, const std::string& gateway_id) {
  nlohmann::json j = {{"v", 1},
                      {"gateway", gateway_id},
                      {"kind", std::string(lifecycle::EventKindName(e.kind))},
                      {"time_ms", absl::ToUnixMillis(e.time)},
                      {"model", e.model_key},
                      {"instance", e.instance},
                      {"state", std::string(lifecycle::StateName(e.state))},
                      {"progress", e.progress},
                      {"reason", e.reason},
                      {"tenant", e.tenant},
                      {"duration_ms", absl::ToInt64Milliseconds(e.duration)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<Event> DecodeEvent(const std::string& payload, std::string* gateway_id) {
  auto j = backends::ParseBoundedJson(payload, "a cluster event");
  if (!j.ok() || !j->is_object() || j->value("v", 0) != 1) return std::nullopt;
  try {
    Event e;
    const std::string kind = j->at("kind").get<std::string>();
    const std::string state = j->at("state").get<std::string>();
    bool kind_ok = false, state_ok = false;
    for (Event::Kind k : kKinds) {
      if (lifecycle::EventKindName(k) == kind) e.kind = k, kind_ok = true;
    }
    for (State s : kStates) {
      if (lifecycle::StateName(s) == state) e.state = s, state_ok = true;
    }
    if (!kind_ok || !state_ok) return std::nullopt;
    *gateway_id = j->at("gateway").get<std::string>();
    e.time = absl::FromUnixMillis(j->at("time_ms").get<int64_t>());
    e.model_key = j->at("model").get<std::string>();
    e.instance = j->at("instance").get<std::string>();
    e.progress = j->at("progress").get<double>();
    e.reason = j->at("reason").get<std::string>();
    e.tenant = j->at("tenant").get<std::string>();
    e.duration = absl::Milliseconds(j->at("duration_ms").get<int64_t>());
    return e;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

SharedEvents::SharedEvents(RedisClient* client, lifecycle::EventBus* bus,
                           SharedEventsOptions options)
    : client_(client),
      bus_(bus),
      options_(std::move(options)),
      channel_(absl::StrCat("lmgate:{", options_.ns, "}:events")) {
  publisher_ = std::thread([this] { PublishLoop(); });
  subscriber_ = std::make_unique<RedisSubscriber>(
      client_->url(), std::vector<std::string>{channel_},
      [this](const std::string&, const std::string& payload) { OnMessage(payload); },
      [this](bool subscribed) {
        absl::MutexLock lock(&mu_);
        subscribed_ = subscribed;
      });
  bus_->SetForwarder([this](const Event& e) { Enqueue(e); });
}

SharedEvents::~SharedEvents() {
  bus_->SetForwarder(nullptr);
  subscriber_.reset();
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  publisher_.join();
}

bool SharedEvents::subscribed() const {
  absl::MutexLock lock(&mu_);
  return subscribed_;
}

int64_t SharedEvents::published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

int64_t SharedEvents::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void SharedEvents::Enqueue(const Event& e) {
  std::string payload = EncodeEvent(e, options_.gateway_id);
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.queue_limit) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(payload));
}

void SharedEvents::PublishLoop() {
  absl::Time last_log = absl::InfinitePast();
  for (;;) {
    std::string payload;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      payload = std::move(queue_.front());
      queue_.pop_front();
    }
    auto r = client_->Command({"PUBLISH", channel_, payload});
    absl::MutexLock lock(&mu_);
    if (r.ok()) {
      ++published_;
      continue;
    }
    ++dropped_;
    if (absl::Now() - last_log >= absl::Seconds(10)) {
      last_log = absl::Now();
      spdlog::warn("cluster events: cannot publish to the other lmgates ({}); they see this "
                   "gateway's changes at their next sync (logged at most every 10 s)",
                   std::string(r.status().message()));
    }
  }
}

void SharedEvents::OnMessage(const std::string& payload) {
  std::string from;
  std::optional<Event> e = DecodeEvent(payload, &from);
  if (!e || from == options_.gateway_id) return;
  bus_->DeliverRemote(*std::move(e));
}

}  // namespace lmgate::cluster
