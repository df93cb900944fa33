// The standard process_* metrics of Prometheus client libraries (prometheus-cpp 1.0 has none):
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds, read from /proc/self at
// scrape time. Linux only; a file that cannot be read leaves its series out.
#ifndef LMGATE_SERVICES_METRICS_PROCESS_H_
#define LMGATE_SERVICES_METRICS_PROCESS_H_

#include "services/metrics/metrics.h"

namespace lmgate::metrics {

// Describes the families and adds a collector that refreshes them before every render.
void AddProcessMetrics(Registry* registry);

}  // namespace lmgate::metrics

#endif  // LMGATE_SERVICES_METRICS_PROCESS_H_
