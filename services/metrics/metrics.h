// Prometheus metrics: counters, gauges and histograms with labels, rendered in the text
// exposition format, and a tiny HTTP endpoint serving them on their own port.
//
// Thread-safe. Recording takes one short mutex per metric family; nothing here blocks on I/O.
#ifndef LMGATE_SERVICES_METRICS_METRICS_H_
#define LMGATE_SERVICES_METRICS_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace lmgate::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  void CounterAdd(const std::string& name, const Labels& labels, double v = 1);
  void GaugeSet(const std::string& name, const Labels& labels, double v);
  // Replaces every series of gauge `name` with `series` (for collectors that own a family, so a
  // label set that is gone does not stay at its last value).
  void GaugeReplace(const std::string& name, const std::vector<std::pair<Labels, double>>& series);
  void Observe(const std::string& name, const Labels& labels, double v);
  // Help text and, for histograms, bucket bounds (seconds by default). Call before recording.
  void Describe(const std::string& name, const std::string& type, const std::string& help,
                std::vector<double> buckets = {});
  // Runs before every render (e.g. to refresh queue-depth gauges).
  void AddCollector(std::function<void(Registry&)> fn);
  std::string Render();

 private:
  struct Series {
    double value = 0;                 // counter / gauge
    std::vector<uint64_t> buckets;    // histogram
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string type = "counter";
    std::string help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // key: rendered label set
  };
  Family& FamilyLocked(const std::string& name, const char* type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(Registry&)>> collectors_ ABSL_GUARDED_BY(mu_);
};

// Serves GET /metrics (and / and /healthz) over plain HTTP/1.0 on its own thread.
class MetricsServer {
 public:
  // `listen` is host:port (port 0 = any free port).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              Registry* registry);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  void Loop();
  Registry* registry_ = nullptr;
  int fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace lmgate::metrics

#endif  // LMGATE_SERVICES_METRICS_METRICS_H_
