#include "services/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace lmgate::metrics {
namespace {

const std::vector<double> kSecondsBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                             30,     60,    120,   300,   600};

// Identifies a label set within a family (the values are raw; '\0' cannot occur in names).
std::string LabelKey(const Labels& labels) {
  std::string key;
  for (const auto& [k, v] : labels) absl::StrAppend(&key, k, "=", v.size(), ":", v, ";");
  return key;
}

prometheus::MetricType TypeOf(const std::string& type) {
  if (type == "gauge") return prometheus::MetricType::Gauge;
  if (type == "histogram") return prometheus::MetricType::Histogram;
  if (type == "counter") return prometheus::MetricType::Counter;
  return prometheus::MetricType::Untyped;
}

// /healthz: an empty answer is the 200 that says the process serves.
class NoMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override { return {}; }
};

}  // namespace

Registry::Family& Registry::FamilyLocked(const std::string& name, const char* type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    if (it->second.type == "histogram") it->second.bounds = kSecondsBuckets;
  }
  return it->second;
}

void Registry::Describe(const std::string& name, const std::string& type, const std::string& help,
                        std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.bounds = type == "histogram" ? (buckets.empty() ? kSecondsBuckets : std::move(buckets))
                                 : std::vector<double>{};
}

Registry::Series& Registry::SeriesLocked(Family& f, const Labels& labels) {
  auto [it, inserted] = f.series.try_emplace(LabelKey(labels));
  if (inserted) it->second.labels = labels;
  return it->second;
}

void Registry::CounterAdd(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  SeriesLocked(FamilyLocked(name, "counter"), labels).value += v;
}

void Registry::CounterSet(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  SeriesLocked(FamilyLocked(name, "counter"), labels).value = v;
}

void Registry::GaugeSet(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  SeriesLocked(FamilyLocked(name, "gauge"), labels).value = v;
}

void Registry::GaugeReplace(const std::string& name,
                            const std::vector<std::pair<Labels, double>>& series) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, "gauge");
  f.series.clear();
  for (const auto& [labels, v] : series) SeriesLocked(f, labels).value = v;
}

void Registry::Observe(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, "histogram");
  Series& s = SeriesLocked(f, labels);
  if (s.buckets.empty()) s.buckets.assign(f.bounds.size(), 0);
  for (size_t i = 0; i < f.bounds.size(); ++i) {
    if (v <= f.bounds[i]) ++s.buckets[i];
  }
  s.sum += v;
  ++s.count;
}

void Registry::AddCollector(std::function<void(Registry&)> fn) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(fn));
}

std::vector<prometheus::MetricFamily> Registry::Collect() const {
  std::vector<std::function<void(Registry&)>> collectors;
  {
    absl::MutexLock lock(&mu_);
    collectors = collectors_;
  }
  // The collectors refresh gauges of this registry (prometheus-cpp's Collect() is const).
  for (auto& c : collectors) c(const_cast<Registry&>(*this));
  absl::MutexLock lock(&mu_);
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families_.size());
  for (const auto& [name, f] : families_) {
    prometheus::MetricFamily& mf = out.emplace_back();
    mf.name = name;
    // prometheus-cpp 1.0.1 escapes label values but writes HELP as given (found by the fuzzer).
    mf.help = absl::StrReplaceAll(f.help, {{"\\", "\\\\"}, {"\n", "\\n"}});
    mf.type = TypeOf(f.type);
    for (const auto& [key, s] : f.series) {
      prometheus::ClientMetric& m = mf.metric.emplace_back();
      for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
      switch (mf.type) {
        case prometheus::MetricType::Counter:
          m.counter.value = s.value;
          break;
        case prometheus::MetricType::Gauge:
          m.gauge.value = s.value;
          break;
        case prometheus::MetricType::Histogram:
          m.histogram.sample_count = s.count;
          m.histogram.sample_sum = s.sum;
          for (size_t i = 0; i < f.bounds.size() && i < s.buckets.size(); ++i) {
            m.histogram.bucket.push_back({s.buckets[i], f.bounds[i]});
          }
          m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
          break;
        default:
          m.untyped.value = s.value;
      }
    }
  }
  return out;
}

std::string Registry::Render() { return prometheus::TextSerializer().Serialize(Collect()); }

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    Registry* registry,
                                                                    ServerOptions options) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics listen \"", listen,
                                                   "\" is not host:port"));
  }
  // civetweb takes numeric addresses only: "127.0.0.1:9464", "[::1]:9464", or "9464" for any.
  std::string host = listen.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  const std::string ports = host.empty() ? std::to_string(port) : absl::StrCat(host, ":", port);
  const int64_t timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(options.timeout));
  std::vector<std::string> civet = {
      "listening_ports", ports,
      "num_threads", std::to_string(std::max(1, options.max_connections)),
      "request_timeout_ms", std::to_string(timeout_ms),
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", std::to_string(timeout_ms),
      "max_request_size", std::to_string(std::max(1024, options.max_request_bytes)),
  };
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  try {
    s->exposer_ = std::make_unique<prometheus::Exposer>(std::move(civet));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen, ": ",
                                               e.what()));
  }
  const std::vector<int> bound = s->exposer_->GetListeningPorts();
  if (bound.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen));
  }
  s->port_ = bound.front();
  // Not owned (a no-op deleter): the registry outlives the server; the Exposer holds weak_ptrs.
  s->collectable_ = std::shared_ptr<prometheus::Collectable>(registry, [](prometheus::Collectable*) {});
  s->health_ = std::make_shared<NoMetrics>();
  s->exposer_->RegisterCollectable(s->collectable_, "/metrics");
  s->exposer_->RegisterCollectable(s->collectable_, "/");
  s->exposer_->RegisterCollectable(s->health_, "/healthz");
  return s;
}

MetricsServer::~MetricsServer() { exposer_.reset(); }

}  // namespace lmgate::metrics
