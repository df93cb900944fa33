#include "services/health.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/stream_reactor.h"

namespace lmgate::services {

using grpc::health::v1::HealthCheckResponse;
using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
using WatchReactor = StreamReactor<HealthCheckResponse>;

struct HealthService::State {
  std::function<bool(const std::string&)> model_ready;

  struct Watcher {
    std::string service;
    std::shared_ptr<WatchReactor::Channel> channel;
    ServingStatus last = HealthCheckResponse::UNKNOWN;
  };

  absl::Mutex mu;
  std::map<std::string, bool> services ABSL_GUARDED_BY(mu) = {{"", true}};
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  std::map<uint64_t, Watcher> watchers ABSL_GUARDED_BY(mu);
  uint64_t next_watcher ABSL_GUARDED_BY(mu) = 1;

  static absl::string_view ModelOf(absl::string_view service) {
    absl::ConsumePrefix(&service, kModelPrefix);
    return service;
  }
  static bool IsModel(const std::string& service) {
    return absl::StartsWith(service, kModelPrefix);
  }
  static ServingStatus Of(bool serving) {
    return serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }

  // Status of a plain (non-model) service name.
  ServingStatus PlainLocked(const std::string& service) ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = services.find(service);
    if (it == services.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
    return Of(it->second && !shut_down);
  }

  // Sends `status` to every watcher of a service `matches` accepts whose last answer differs.
  template <typename Match>
  void NotifyLocked(Match matches, ServingStatus status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& [id, w] : watchers) {
      if (!matches(w.service) || w.last == status) continue;
      w.last = status;
      HealthCheckResponse r;
      r.set_status(status);
      w.channel->Push(std::move(r));
    }
  }

  void Set(const std::string& service, bool serving) {
    absl::MutexLock lock(&mu);
    if (shut_down || IsModel(service)) return;  // per-model answers are computed, not set
    services[service] = serving;
    NotifyLocked([&](const std::string& s) { return s == service; }, Of(serving));
  }
  void SetAll(bool serving) {
    absl::MutexLock lock(&mu);
    if (shut_down) return;
    for (auto& [name, s] : services) s = serving;
    NotifyLocked(
        [&](const std::string& s) ABSL_SHARED_LOCKS_REQUIRED(mu) { return services.count(s) > 0; },
        Of(serving));
  }
  void Shutdown() {
    absl::MutexLock lock(&mu);
    if (shut_down) return;
    SetAllLockedForShutdown();
  }
  void SetAllLockedForShutdown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& [name, s] : services) s = false;
    NotifyLocked(
        [&](const std::string& s) ABSL_SHARED_LOCKS_REQUIRED(mu) {
          return IsModel(s) || services.count(s) > 0;
        },
        HealthCheckResponse::NOT_SERVING);
    shut_down = true;
  }
};

namespace {

// The server's handle: forwards to the shared state.
class HealthInterface : public grpc::HealthCheckServiceInterface {
 public:
  explicit HealthInterface(std::shared_ptr<HealthService::State> state)
      : state_(std::move(state)) {}
  void SetServingStatus(const std::string& service, bool serving) override {
    state_->Set(service, serving);
  }
  void SetServingStatus(bool serving) override { state_->SetAll(serving); }
  void Shutdown() override { state_->Shutdown(); }

 private:
  std::shared_ptr<HealthService::State> state_;
};

}  // namespace

HealthService::HealthService(std::function<bool(const std::string&)> model_ready)
    : state_(std::make_shared<State>()) {
  state_->model_ready = std::move(model_ready);
}

HealthService::~HealthService() = default;

std::unique_ptr<grpc::HealthCheckServiceInterface> HealthService::Interface() {
  return std::make_unique<HealthInterface>(state_);
}

void HealthService::ModelChanged(const std::string& model_key, bool ready) {
  const std::string service = absl::StrCat(kModelPrefix, model_key);
  absl::MutexLock lock(&state_->mu);
  if (state_->shut_down) return;
  state_->NotifyLocked([&](const std::string& s) { return s == service; }, State::Of(ready));
}

void HealthService::RecheckModels() {
  std::set<std::string> watched;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->shut_down) return;
    for (const auto& [id, w] : state_->watchers) {
      if (State::IsModel(w.service)) watched.insert(w.service);
    }
  }
  // Outside the lock: model_ready reads the registry.
  std::map<std::string, ServingStatus> now;
  for (const std::string& service : watched) {
    now[service] = State::Of(state_->model_ready(std::string(State::ModelOf(service))));
  }
  absl::MutexLock lock(&state_->mu);
  if (state_->shut_down) return;
  for (const auto& entry : now) {  // not a structured binding: C++17 lambdas cannot capture one
    const std::string& service = entry.first;
    state_->NotifyLocked([&](const std::string& s) { return s == service; }, entry.second);
  }
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx,
                                               const grpc::health::v1::HealthCheckRequest* req,
                                               HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  const std::string& service = req->service();
  if (State::IsModel(service)) {
    const bool ready = state_->model_ready(std::string(State::ModelOf(service)));
    absl::MutexLock lock(&state_->mu);
    resp->set_status(State::Of(ready && !state_->shut_down));
  } else {
    absl::MutexLock lock(&state_->mu);
    const ServingStatus st = state_->PlainLocked(service);
    if (st == HealthCheckResponse::SERVICE_UNKNOWN) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("unknown health service \"", service,
                       "\"; lmgate serves \"\", lmgate.v1.Inference, lmgate.v1.ModelManager and "
                       "lmgate.model/<model>")));
      return reactor;
    }
    resp->set_status(st);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req) {
  // Only the newest status matters to a slow reader: one pending message at most.
  auto* reactor = new WatchReactor(ctx, [](HealthCheckResponse* last,
                                           const HealthCheckResponse& next) {
    *last = next;
    return true;
  });
  std::shared_ptr<WatchReactor::Channel> channel = reactor->channel();
  const std::string service = req->service();
  const bool model = State::IsModel(service);
  const bool ready = model && state_->model_ready(std::string(State::ModelOf(service)));
  uint64_t id;
  {
    absl::MutexLock lock(&state_->mu);
    ServingStatus first = model ? State::Of(ready && !state_->shut_down)
                                : state_->PlainLocked(service);
    id = state_->next_watcher++;
    state_->watchers[id] = State::Watcher{service, channel, first};
    HealthCheckResponse r;
    r.set_status(first);
    channel->Push(std::move(r));
  }
  std::weak_ptr<State> weak = state_;
  channel->SetOnCancel([weak, id] {
    if (auto state = weak.lock()) {
      std::shared_ptr<WatchReactor::Channel> gone;  // released outside the lock
      absl::MutexLock lock(&state->mu);
      auto it = state->watchers.find(id);
      if (it != state->watchers.end()) {
        gone = std::move(it->second.channel);
        state->watchers.erase(it);
      }
    }
  });
  return reactor;
}

}  // namespace lmgate::services
