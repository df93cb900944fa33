// A fixed pool of threads for blocking work (driver calls of unary RPCs, loads), so no gRPC
// reaction ever blocks. Thread-safe. The destructor drains queued work, then joins.
#ifndef LMGATE_SERVICES_WORKER_POOL_H_
#define LMGATE_SERVICES_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lmgate::services {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Schedule(std::function<void()> fn);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_WORKER_POOL_H_
