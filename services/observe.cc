#include "services/observe.h"

#include <spdlog/spdlog.h>

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "common/version.h"
#include "services/logging.h"
#include "services/metrics/process.h"

namespace lmgate::services {
namespace {

std::string CodeName(absl::StatusCode c) { return absl::StatusCodeToString(c); }

}  // namespace

Observer::Observer(metrics::Registry* r, gateway::Gateway* gateway)
    : registry_(r), gateway_(gateway) {
  r->Describe("lmgate_requests_total", "counter",
              "Calls by method, tenant, model, driver and gRPC status code.");
  r->Describe("lmgate_request_duration_seconds", "histogram", "Wall time of calls inside lmgate.");
  r->Describe("lmgate_time_to_first_token_seconds", "histogram",
              "Time to first token (LM Studio's figure when the driver reports it).");
  r->Describe("lmgate_tokens_per_second", "histogram", "Generation speed per call.",
              {1, 5, 10, 20, 40, 80, 160, 320, 640, 1280});
  r->Describe("lmgate_tokens_total", "counter", "Prompt (in) and completion (out) tokens.");
  r->Describe("lmgate_queue_wait_seconds", "histogram", "Time calls waited in admission queues.");
  r->Describe("lmgate_load_wait_seconds", "histogram", "Time calls waited for their model to load.");
  r->Describe("lmgate_overhead_seconds", "histogram",
              "lmgate's own time per generation: total minus upstream, queue and load waits.",
              {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
               0.025, 0.1});
  r->Describe("lmgate_upstream_errors_total", "counter", "Failed upstream calls by driver and code.");
  r->Describe("lmgate_model_loaded", "gauge",
              "1 for every instance loaded on the host (model key, instance identifier).");
  r->Describe("lmgate_host_up", "gauge",
              "1 if lmgate's last listing of the LM Studio host's models succeeded, else 0.");
  r->Describe("lmgate_build_info", "gauge", "Always 1: the version and commit of lmgate.");
  r->GaugeSet("lmgate_build_info", {{"version", kLmgateVersion}, {"commit", kLmgateCommit}}, 1);
  metrics::AddProcessMetrics(r);
  r->Describe("lmgate_model_load_seconds", "histogram", "Model load durations.");
  r->Describe("lmgate_model_unload_seconds", "histogram", "Model unload durations.");
  r->Describe("lmgate_model_events_total", "counter",
              "Lifecycle events by kind (load progress ticks and snapshots are not counted).");
  r->Describe("lmgate_queue_depth", "gauge", "Requests waiting in the admission queue per model.");
  r->Describe("lmgate_in_flight", "gauge", "Requests running per model.");
  r->AddCollector([gateway](metrics::Registry& reg) {
    // Admission queues are per resolved instance, summed by model key (AdmissionStats); label
    // known models only (the rest add up under "other").
    std::map<std::string, std::pair<int, int>> by_label;  // label -> (queued, in use)
    for (const auto& [model, s] : gateway->AdmissionStats()) {
      auto& v = by_label[gateway->ModelLabel(model)];
      v.first += s.queued;
      v.second += s.in_use;
    }
    std::vector<std::pair<metrics::Labels, double>> depth, in_flight;
    for (const auto& [label, v] : by_label) {
      depth.push_back({{{"model", label}}, static_cast<double>(v.first)});
      in_flight.push_back({{{"model", label}}, static_cast<double>(v.second)});
    }
    reg.GaugeReplace("lmgate_queue_depth", depth);
    reg.GaugeReplace("lmgate_in_flight", in_flight);
    // Instances of the registry's state (no host call): the host's models, so the labels are
    // bounded by what is loaded there.
    std::vector<std::pair<metrics::Labels, double>> loaded;
    for (const auto& m : gateway->Snapshot()) {
      for (const auto& inst : m.instances) {
        if (inst.state != lifecycle::State::kReady) continue;
        loaded.push_back({{{"model", m.info.key}, {"instance", inst.info.identifier}}, 1});
      }
    }
    reg.GaugeReplace("lmgate_model_loaded", loaded);
    reg.GaugeSet("lmgate_host_up", {}, gateway->HostStatus().ok() ? 1 : 0);
  });
}

void Observer::Log(const CallInfo& call, absl::string_view driver, const absl::Status& status,
                   absl::Duration took, const gateway::GenerateOutcome* o) {
  // Not set_pattern() on a clone: that would re-format the sinks every logger shares.
  static spdlog::logger& logger = RecordLogger("access");
  if (!logger.should_log(spdlog::level::info)) return;
  nlohmann::json j = {{"ts", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone())},
                      {"request_id", call.request_id},
                      {"trace_id", call.trace_id},
                      {"peer", call.peer},
                      {"method", call.method},
                      {"tenant", call.tenant},
                      {"model", call.model},
                      {"driver", std::string(driver)},
                      {"code", CodeName(status.code())},
                      {"ms", absl::ToDoubleMilliseconds(took)}};
  if (!status.ok()) j["error"] = std::string(status.message());
  if (!call.instance.empty()) j["instance"] = call.instance;
  if (o != nullptr) {
    j["instance"] = o->instance;
    if (o->result.stats.time_to_first_token) {
      j["ttft_ms"] = absl::ToDoubleMilliseconds(*o->result.stats.time_to_first_token);
    }
    j["prompt_tokens"] = o->result.stats.prompt_tokens;
    j["completion_tokens"] = o->result.stats.completion_tokens;
    j["queue_ms"] = absl::ToDoubleMilliseconds(o->queue_wait);
    j["load_ms"] = absl::ToDoubleMilliseconds(o->load_wait);
  }
  LogRecord(logger, spdlog::level::info, "access", j);
}

void Observer::Generated(const CallInfo& call,
                         const absl::StatusOr<gateway::GenerateOutcome>& outcome) {
  const absl::Duration took = absl::Now() - call.start;
  // A call that failed or was cancelled keeps the driver it was routed to (or asked for).
  const std::string driver(
      backends::DriverKindName(outcome.ok() ? outcome->driver : call.driver));
  const absl::StatusCode code = outcome.ok() ? absl::StatusCode::kOk : outcome.status().code();
  registry_->CounterAdd("lmgate_requests_total", {{"method", call.method},
                                                  {"tenant", call.tenant},
                                                  {"model", gateway_->ModelLabel(call.model)},
                                                  {"driver", driver},
                                                  {"code", CodeName(code)}});
  registry_->Observe("lmgate_request_duration_seconds", {{"method", call.method}},
                     absl::ToDoubleSeconds(took));
  if (!outcome.ok()) {
    if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kAborted ||
        code == absl::StatusCode::kUnauthenticated) {
      registry_->CounterAdd("lmgate_upstream_errors_total",
                            {{"driver", driver}, {"code", CodeName(code)}});
    }
    Log(call, driver, outcome.status(), took, nullptr);
    return;
  }
  const auto& o = *outcome;
  const auto& st = o.result.stats;
  const std::string model = gateway_->ModelLabel(o.model_key);
  const metrics::Labels md = {{"model", model}, {"driver", driver}};
  if (st.time_to_first_token) {
    registry_->Observe("lmgate_time_to_first_token_seconds", md,
                       absl::ToDoubleSeconds(*st.time_to_first_token));
  }
  if (st.tokens_per_second) registry_->Observe("lmgate_tokens_per_second", md, *st.tokens_per_second);
  registry_->CounterAdd("lmgate_tokens_total",
                        {{"tenant", call.tenant}, {"model", model}, {"direction", "in"}},
                        st.prompt_tokens);
  registry_->CounterAdd("lmgate_tokens_total",
                        {{"tenant", call.tenant}, {"model", model}, {"direction", "out"}},
                        st.completion_tokens);
  registry_->Observe("lmgate_queue_wait_seconds", {{"model", model}},
                     absl::ToDoubleSeconds(o.queue_wait));
  registry_->Observe("lmgate_load_wait_seconds", {{"model", model}},
                     absl::ToDoubleSeconds(o.load_wait));
  const absl::Duration overhead = o.total_time - o.upstream_time - o.queue_wait - o.load_wait;
  registry_->Observe("lmgate_overhead_seconds", {{"method", call.method}},
                     std::max(0.0, absl::ToDoubleSeconds(overhead)));
  Log(call, driver, absl::OkStatus(), took, &o);
}

void Observer::Unary(const CallInfo& call, const absl::Status& status) {
  const absl::Duration took = absl::Now() - call.start;
  const std::string d(backends::DriverKindName(call.driver));
  registry_->CounterAdd("lmgate_requests_total", {{"method", call.method},
                                                  {"tenant", call.tenant},
                                                  {"model", gateway_->ModelLabel(call.model)},
                                                  {"driver", d},
                                                  {"code", CodeName(status.code())}});
  registry_->Observe("lmgate_request_duration_seconds", {{"method", call.method}},
                     absl::ToDoubleSeconds(took));
  Log(call, d, status, took, nullptr);
}

// Runs inside the registry's event callback (Gateway::ModelLabel would take the registry lock
// again); the events named here are of loaded or unloaded instances, so their keys are known.
void Observer::ModelEvent(const lifecycle::Event& e) {
  // A load reports progress many times a second; those ticks are not events.
  if (e.kind == lifecycle::Event::Kind::kLoadProgress ||
      e.kind == lifecycle::Event::Kind::kSnapshot) {
    return;
  }
  registry_->CounterAdd("lmgate_model_events_total",
                        {{"kind", std::string(lifecycle::EventKindName(e.kind))}});
  if (e.kind == lifecycle::Event::Kind::kLoaded) {
    registry_->Observe("lmgate_model_load_seconds", {{"model", e.model_key}},
                       absl::ToDoubleSeconds(e.duration));
  } else if (e.kind == lifecycle::Event::Kind::kUnloaded ||
             e.kind == lifecycle::Event::Kind::kExpired ||
             e.kind == lifecycle::Event::Kind::kEvicted) {
    registry_->Observe("lmgate_model_unload_seconds", {{"model", e.model_key}},
                       absl::ToDoubleSeconds(e.duration));
  }
}

void LogModelEvent(const lifecycle::Event& e) {
  using K = lifecycle::Event::Kind;
  if (e.kind == K::kSnapshot || e.kind == K::kLoadProgress) return;
  static spdlog::logger& logger = RecordLogger("lifecycle");
  // Starts are debug: the outcome (loaded, failed, unloaded, ...) follows with the same cause.
  const auto level = (e.kind == K::kLoadStarted || e.kind == K::kUnloadStarted)
                         ? spdlog::level::debug
                         : (e.kind == K::kLoadFailed ? spdlog::level::warn : spdlog::level::info);
  if (!logger.should_log(level)) return;
  nlohmann::json j = {{"ts", absl::FormatTime(absl::RFC3339_full, e.time, absl::UTCTimeZone())},
                      {"event", std::string(lifecycle::EventKindName(e.kind))},
                      {"model", e.model_key},
                      {"instance", e.instance},
                      {"state", std::string(lifecycle::StateName(e.state))},
                      {"reason", e.reason}};
  if (!e.tenant.empty()) j["tenant"] = e.tenant;
  if (e.duration > absl::ZeroDuration()) j["ms"] = absl::ToDoubleMilliseconds(e.duration);
  if (e.events_dropped > 0) j["events_dropped"] = e.events_dropped;
  LogRecord(logger, level, "model event", j);
}

}  // namespace lmgate::services
