// Prometheus metrics: counters, gauges and histograms with labels, and the HTTP endpoint serving
// them on their own port.
//
// The registry is a prometheus-cpp Collectable (its families become prometheus::MetricFamily), so
// prometheus-cpp renders the text format and its Exposer (civetweb, a pool of threads) serves it.
//
// Thread-safe. Recording takes one short mutex; nothing here blocks on I/O.
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
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace lmgate::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry : public prometheus::Collectable {
 public:
  void CounterAdd(const std::string& name, const Labels& labels, double v = 1);
  // For collectors mirroring a total kept elsewhere (e.g. the kernel's CPU time).
  void CounterSet(const std::string& name, const Labels& labels, double v);
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
  // Runs the collectors, then returns every family (what the endpoint serves).
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() in the text exposition format.
  std::string Render();

 private:
  struct Series {
    Labels labels;
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

  Series& SeriesLocked(Family& f, const Labels& labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Collect() is const for prometheus-cpp, but the collectors refresh gauges.
  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(Registry&)>> collectors_ ABSL_GUARDED_BY(mu_);
};

struct ServerOptions {
  // Connections served at once (civetweb worker threads); more wait in the accept queue.
  int max_connections = 16;
  // Bound of reading a request, of writing the answer to a client that does not read, and of an
  // idle keep-alive connection; the connection is closed after it.
  absl::Duration timeout = absl::Seconds(10);
  // Request line + headers; a longer request gets 400 and is closed.
  int max_request_bytes = 8192;
};

// Serves GET /metrics (and /) and /healthz (an empty 200) over HTTP/1.1 with prometheus-cpp's
// Exposer. Destroying it stops the server (running requests finish first).
class MetricsServer {
 public:
  // `listen` is host:port (port 0 = any free port); `registry` must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              Registry* registry,
                                                              ServerOptions options = {});
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::shared_ptr<prometheus::Collectable> collectable_;  // aliases the caller's Registry
  std::shared_ptr<prometheus::Collectable> health_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace lmgate::metrics

#endif  // LMGATE_SERVICES_METRICS_METRICS_H_
