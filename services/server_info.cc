#include "services/server_info.h"

#include "common/version.h"

namespace lmgate::services {

std::vector<std::string> CapabilityNames(const backends::Capabilities& caps) {
  const std::pair<bool, const char*> all[] = {
      {caps.list_models, "list_models"},
      {caps.load, "load"},
      {caps.load_progress, "load_progress"},
      {caps.unload, "unload"},
      {caps.chat, "chat"},
      {caps.complete, "complete"},
      {caps.embed, "embed"},
      {caps.tokenize, "tokenize"},
      {caps.inference_stats, "inference_stats"},
      {caps.tool_calls, "tool_calls"},
      {caps.structured_output, "structured_output"},
      {caps.context_overflow_policy, "context_overflow_policy"},
  };
  std::vector<std::string> names;
  for (const auto& [has, name] : all) {
    if (has) names.push_back(name);
  }
  return names;
}

ServerReport CollectServerInfo(const backends::DriverSet& drivers, const backends::CallContext& ctx) {
  ServerReport report;
  report.version = kLmgateVersion;
  report.lmstudio_version = "unknown";
  bool have_version = false;
  for (const auto& d : drivers.drivers()) {
    DriverReport r;
    r.kind = d->kind();
    r.probe = d->Probe(ctx);
    r.capabilities = CapabilityNames(d->capabilities());
    if (r.probe.ok() && !have_version) {
      if (auto v = d->HostVersion(ctx); v.ok() && !v->empty()) {
        report.lmstudio_version = *v;
        have_version = true;
      }
    }
    report.drivers.push_back(std::move(r));
  }
  return report;
}

}  // namespace lmgate::services
