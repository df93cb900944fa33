// The blocking helpers of Connection, built on StartCall() alone: no Beast here, so this TU stays
// cheap to compile.
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backends/sdk_ws/connection.h"

namespace lmgate::backends::sdk_ws {

absl::StatusOr<std::vector<Json>> Connection::CallAll(std::vector<RpcRequest> requests,
                                                      absl::Time deadline,
                                                      const std::shared_ptr<CancelToken>& cancel) {
  struct Shared {
    absl::Mutex mu;
    std::vector<Json> results ABSL_GUARDED_BY(mu);
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
    absl::Status error ABSL_GUARDED_BY(mu);
    bool cancelled ABSL_GUARDED_BY(mu) = false;
  };
  auto shared = std::make_shared<Shared>();
  {
    absl::MutexLock lock(&shared->mu);
    shared->results.resize(requests.size());
    shared->remaining = requests.size();
  }
  std::vector<std::shared_ptr<PendingCall>> calls;
  calls.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    calls.push_back(StartCall(std::move(requests[i]), [shared, i](absl::StatusOr<Json> r) {
      absl::MutexLock lock(&shared->mu);
      if (r.ok()) {
        shared->results[i] = *std::move(r);
        --shared->remaining;
      } else if (shared->error.ok()) {
        shared->error = r.status();
      }
    }));
  }
  CancelToken::CallbackId cancel_id = 0;
  if (cancel) {
    cancel_id = cancel->AddCallback([shared] {
      absl::MutexLock lock(&shared->mu);
      shared->cancelled = true;
    });
  }
  absl::Status outcome;
  std::vector<Json> results;
  {
    absl::MutexLock lock(&shared->mu);
    auto done = [&shared]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
      return shared->remaining == 0 || !shared->error.ok() || shared->cancelled;
    };
    shared->mu.AwaitWithDeadline(absl::Condition(&done), deadline);
    if (shared->remaining == 0) {
      results = std::move(shared->results);
    } else if (!shared->error.ok()) {
      outcome = shared->error;
    } else if (shared->cancelled) {
      outcome = absl::CancelledError("the call was cancelled");
    } else {
      outcome = absl::DeadlineExceededError("the deadline passed waiting for LM Studio");
    }
  }
  if (cancel_id != 0) cancel->RemoveCallback(cancel_id);
  if (!outcome.ok()) {
    for (auto& call : calls) call->Abort(outcome);
    return outcome;
  }
  return results;
}

absl::StatusOr<Json> Connection::Call(RpcRequest request, absl::Time deadline,
                                      const std::shared_ptr<CancelToken>& cancel) {
  std::vector<RpcRequest> one;
  one.push_back(std::move(request));
  absl::StatusOr<std::vector<Json>> results = CallAll(std::move(one), deadline, cancel);
  if (!results.ok()) return results.status();
  return std::move(results->front());
}

}  // namespace lmgate::backends::sdk_ws
