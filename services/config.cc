#include "services/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "backends/http/url.h"
#include "backends/json.h"
#include "nlohmann/json.hpp"
#include "services/config_internal.h"
#include "services/config_text.h"

namespace lmgate::services {
namespace {

using nlohmann::json;

using config_internal::Bad;
using config_internal::CheckKeys;
using config_internal::Read;
using config_internal::ReadOpt;
using config_internal::ReadSeconds;

absl::Status ParseModelPolicy(const json& m, const std::string& where,
                              lifecycle::ModelPolicy* p) {
  if (auto st = CheckKeys(m, where,
                          {"context_length", "gpu_offload_ratio", "cpu_threads",
                           "rope_frequency_base", "rope_frequency_scale", "flash_attention",
                           "parallel_slots", "eval_batch_size", "ttl_seconds", "keep_loaded",
                           "sampling"});
      !st.ok())
    return st;
  absl::Status st;
  backends::LoadParams& l = p->load;
  if (!(st = ReadOpt(m, where, "context_length", &l.context_length)).ok()) return st;
  if (!(st = ReadOpt(m, where, "gpu_offload_ratio", &l.gpu_offload_ratio)).ok()) return st;
  if (!(st = ReadOpt(m, where, "cpu_threads", &l.cpu_threads)).ok()) return st;
  if (!(st = ReadOpt(m, where, "rope_frequency_base", &l.rope_frequency_base)).ok()) return st;
  if (!(st = ReadOpt(m, where, "rope_frequency_scale", &l.rope_frequency_scale)).ok()) return st;
  if (!(st = ReadOpt(m, where, "flash_attention", &l.flash_attention)).ok()) return st;
  if (!(st = ReadOpt(m, where, "parallel_slots", &l.parallel_slots)).ok()) return st;
  if (!(st = ReadOpt(m, where, "eval_batch_size", &l.eval_batch_size)).ok()) return st;
  if (l.context_length && *l.context_length < 1) return Bad(where + ".context_length", "must be >= 1");
  if (l.gpu_offload_ratio && (*l.gpu_offload_ratio < 0 || *l.gpu_offload_ratio > 1))
    return Bad(where + ".gpu_offload_ratio", "must be 0..1");
  if (l.parallel_slots && (*l.parallel_slots < 1 || *l.parallel_slots > 64))
    return Bad(where + ".parallel_slots", "must be 1..64");
  if (l.cpu_threads && *l.cpu_threads < 1) return Bad(where + ".cpu_threads", "must be >= 1");
  if (l.eval_batch_size && *l.eval_batch_size < 1)
    return Bad(where + ".eval_batch_size", "must be >= 1");
  if (m.contains("ttl_seconds")) {
    absl::Duration ttl;
    if (!(st = ReadSeconds(m["ttl_seconds"], where + ".ttl_seconds", &ttl)).ok()) return st;
    p->ttl = ttl;
  }
  if (m.contains("keep_loaded") &&
      !(st = Read(m["keep_loaded"], where + ".keep_loaded", &p->keep_loaded)).ok())
    return st;
  if (m.contains("sampling")) {
    const json& s = m["sampling"];
    const std::string sw = where + ".sampling";
    if (!(st = CheckKeys(s, sw,
                         {"temperature", "top_p", "top_k", "min_p", "max_tokens", "stop",
                          "presence_penalty", "frequency_penalty", "repeat_penalty", "seed"}))
             .ok())
      return st;
    backends::Sampling& d = p->sampling;
    if (!(st = ReadOpt(s, sw, "temperature", &d.temperature)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "top_p", &d.top_p)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "top_k", &d.top_k)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "min_p", &d.min_p)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "max_tokens", &d.max_tokens)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "presence_penalty", &d.presence_penalty)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "frequency_penalty", &d.frequency_penalty)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "repeat_penalty", &d.repeat_penalty)).ok()) return st;
    if (!(st = ReadOpt(s, sw, "seed", &d.seed)).ok()) return st;
    if (s.contains("stop") && !(st = Read(s["stop"], sw + ".stop", &d.stop)).ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ParseHttp(const json& h, Config::Http* out) {
  if (auto st = CheckKeys(h, "http",
                          {"threads", "max_body_bytes", "max_header_bytes", "max_headers",
                           "max_connections", "idle_timeout_seconds", "read_timeout_seconds"});
      !st.ok())
    return st;
  absl::Status st;
  struct {
    const char* key;
    int* out;
    int min, max;
  } ints[] = {{"threads", &out->threads, 1, 64},
              {"max_header_bytes", &out->max_header_bytes, 1024, 1 << 20},
              {"max_headers", &out->max_headers, 8, 10000},
              {"max_connections", &out->max_connections, 1, 65536}};
  for (const auto& i : ints) {
    if (!h.contains(i.key)) continue;
    const std::string key = absl::StrCat("http.", i.key);
    if (!(st = Read(h[i.key], key, i.out)).ok()) return st;
    if (*i.out < i.min || *i.out > i.max) {
      return Bad(key, absl::StrCat("must be ", i.min, "..", i.max));
    }
  }
  if (h.contains("max_body_bytes")) {
    if (!(st = Read(h["max_body_bytes"], "http.max_body_bytes", &out->max_body_bytes)).ok())
      return st;
    if (out->max_body_bytes < 1024 || out->max_body_bytes > (int64_t{1} << 30)) {
      return Bad("http.max_body_bytes", "must be 1024..1073741824");
    }
  }
  for (auto [key, out_d] : {std::pair{"idle_timeout_seconds", &out->idle_timeout},
                            std::pair{"read_timeout_seconds", &out->read_timeout}}) {
    if (!h.contains(key)) continue;
    const std::string k = absl::StrCat("http.", key);
    if (!(st = ReadSeconds(h[key], k, out_d)).ok()) return st;
    if (*out_d <= absl::ZeroDuration() || *out_d > absl::Hours(1)) {
      return Bad(k, "must be > 0 and <= 3600");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseLimits(const json& l, TransportLimits* out) {
  if (auto st = CheckKeys(l, "limits",
                          {"max_request_bytes", "server_memory_bytes",
                           "max_concurrent_streams_per_connection", "max_connections",
                           "handshake_timeout_seconds",
                           // read by ParseConfig into Config (stream limits, not transport)
                           "stream_write_stall_seconds", "stream_max_pending_bytes"});
      !st.ok())
    return st;
  absl::Status st;
  struct {
    const char* key;
    int* out;
    int min;
  } ints[] = {{"max_request_bytes", &out->max_request_bytes, 1024},
              {"max_concurrent_streams_per_connection",
               &out->max_concurrent_streams_per_connection, 1},
              {"max_connections", &out->max_connections, 1}};
  for (const auto& i : ints) {
    if (!l.contains(i.key)) continue;
    const std::string key = absl::StrCat("limits.", i.key);
    if (!(st = Read(l[i.key], key, i.out)).ok()) return st;
    if (*i.out < i.min) return Bad(key, absl::StrCat("must be >= ", i.min));
  }
  if (l.contains("server_memory_bytes")) {
    if (!(st = Read(l["server_memory_bytes"], "limits.server_memory_bytes",
                    &out->server_memory_bytes))
             .ok())
      return st;
    if (out->server_memory_bytes < (int64_t{16} << 20)) {
      return Bad("limits.server_memory_bytes", "must be >= 16777216 (16 MiB)");
    }
  }
  if (l.contains("handshake_timeout_seconds")) {
    if (!(st = ReadSeconds(l["handshake_timeout_seconds"], "limits.handshake_timeout_seconds",
                           &out->handshake_timeout))
             .ok())
      return st;
    if (out->handshake_timeout <= absl::ZeroDuration() ||
        out->handshake_timeout > absl::Hours(1)) {
      return Bad("limits.handshake_timeout_seconds", "must be > 0 and <= 3600");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackListen(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  unsigned char a[16];
  if (inet_pton(AF_INET, host.c_str(), a) == 1) return a[0] == 127;  // 127.0.0.0/8
  if (inet_pton(AF_INET6, host.c_str(), a) == 1) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::equal(a, a + 16, kLoopback) ||
           (std::equal(a, a + 12, kMapped) && a[12] == 127);
  }
  return false;  // a name ("127.evil.example") may resolve anywhere
}

namespace {

// A count that must not be negative; `zero` says what 0 means.
template <typename T>
absl::Status NotNegative(T value, const std::string& key, const char* zero) {
  if (value >= 0) return absl::OkStatus();
  return Bad(key, absl::StrCat("must be >= 0 (0 = ", zero, "), not ", value));
}

absl::Status ParseConversations(const json& j, conversations::StoreOptions* out) {
  if (auto st = CheckKeys(j, "conversations",
                          {"ttl_seconds", "max_entries", "max_bytes", "max_conversation_bytes"});
      !st.ok())
    return st;
  absl::Status st;
  if (j.contains("ttl_seconds") &&
      !(st = ReadSeconds(j["ttl_seconds"], "conversations.ttl_seconds", &out->ttl)).ok())
    return st;
  if (j.contains("max_entries") &&
      !(st = Read(j["max_entries"], "conversations.max_entries", &out->max_entries)).ok())
    return st;
  if (j.contains("max_bytes") &&
      !(st = Read(j["max_bytes"], "conversations.max_bytes", &out->max_bytes)).ok())
    return st;
  if (j.contains("max_conversation_bytes") &&
      !(st = Read(j["max_conversation_bytes"], "conversations.max_conversation_bytes",
                  &out->max_conversation_bytes))
           .ok())
    return st;
  if (out->ttl <= absl::ZeroDuration()) return Bad("conversations.ttl_seconds", "must be > 0");
  if (out->max_conversation_bytes < 1024) {
    return Bad("conversations.max_conversation_bytes", "must be >= 1024");
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseConfigDocument(const json& doc) {
  Config c;
  if (auto st = CheckKeys(doc, "", {"listen", "lmstudio", "drivers", "prefer_configured_order",
                                    "default_model", "default_embedding_model", "worker_threads",
                                    "shutdown_grace_seconds", "drain_delay_seconds",
                                    "ready_requires_pinned", "log_level", "log_format", "models",
                                    "default_ttl_seconds", "allow_client_ttl",
                                    "max_loaded_models", "max_loaded_bytes",
                                    "refresh_interval_seconds", "unknown_model_cache_seconds",
                                    "admission", "keys",
                                    "allow_cidrs", "insecure", "metrics_listen", "tls",
                                    "max_json_depth", "metrics_max_connections",
                                    "metrics_timeout_seconds", "limits", "cluster",
                                    "http_listen", "http", "conversations"});
      !st.ok())
    return st;
  absl::Status st;
  if (doc.contains("listen") && !(st = Read(doc["listen"], "listen", &c.listen)).ok()) return st;
  if (doc.contains("lmstudio")) {
    const json& h = doc["lmstudio"];
    if (!(st = CheckKeys(h, "lmstudio",
                         {"url", "api_token", "api_token_env", "connect_timeout_seconds",
                          "request_timeout_seconds", "load_timeout_seconds",
                          "idle_timeout_seconds", "max_retries", "lms_path"}))
             .ok())
      return st;
    if (h.contains("url") && !(st = Read(h["url"], "lmstudio.url", &c.host.base_url)).ok())
      return st;
    if (h.contains("api_token") &&
        !(st = Read(h["api_token"], "lmstudio.api_token", &c.host.api_token)).ok())
      return st;
    if (h.contains("api_token_env")) {
      std::string var;
      if (!(st = Read(h["api_token_env"], "lmstudio.api_token_env", &var)).ok()) return st;
      const char* v = std::getenv(var.c_str());
      if (v == nullptr) {
        return Bad("lmstudio.api_token_env", absl::StrCat("environment variable ", var, " is not set"));
      }
      c.host.api_token = v;
      c.api_token_env = var;
    }
    struct {
      const char* key;
      absl::Duration* out;
    } durations[] = {{"connect_timeout_seconds", &c.host.connect_timeout},
                     {"request_timeout_seconds", &c.host.request_timeout},
                     {"load_timeout_seconds", &c.host.load_timeout},
                     {"idle_timeout_seconds", &c.host.idle_timeout}};
    for (const auto& d : durations) {
      if (h.contains(d.key) &&
          !(st = ReadSeconds(h[d.key], absl::StrCat("lmstudio.", d.key), d.out)).ok())
        return st;
    }
    if (h.contains("max_retries") &&
        !(st = Read(h["max_retries"], "lmstudio.max_retries", &c.host.max_retries)).ok())
      return st;
    if (h.contains("lms_path") &&
        !(st = Read(h["lms_path"], "lmstudio.lms_path", &c.host.lms_path)).ok())
      return st;
  }
  if (doc.contains("drivers") && !(st = Read(doc["drivers"], "drivers", &c.drivers)).ok())
    return st;
  if (doc.contains("prefer_configured_order") &&
      !(st = Read(doc["prefer_configured_order"], "prefer_configured_order",
                  &c.prefer_configured_order))
           .ok())
    return st;
  if (doc.contains("default_model") &&
      !(st = Read(doc["default_model"], "default_model", &c.gateway.default_model)).ok())
    return st;
  if (doc.contains("default_embedding_model") &&
      !(st = Read(doc["default_embedding_model"], "default_embedding_model",
                  &c.gateway.default_embedding_model))
           .ok())
    return st;
  if (doc.contains("worker_threads") &&
      !(st = Read(doc["worker_threads"], "worker_threads", &c.worker_threads)).ok())
    return st;
  if (doc.contains("shutdown_grace_seconds") &&
      !(st = ReadSeconds(doc["shutdown_grace_seconds"], "shutdown_grace_seconds",
                         &c.shutdown_grace))
           .ok())
    return st;
  if (doc.contains("drain_delay_seconds") &&
      !(st = ReadSeconds(doc["drain_delay_seconds"], "drain_delay_seconds", &c.drain_delay)).ok())
    return st;
  if (doc.contains("ready_requires_pinned") &&
      !(st = Read(doc["ready_requires_pinned"], "ready_requires_pinned",
                  &c.ready_requires_pinned)).ok())
    return st;
  if (doc.contains("log_level") && !(st = Read(doc["log_level"], "log_level", &c.log_level)).ok())
    return st;
  if (doc.contains("log_format") &&
      !(st = Read(doc["log_format"], "log_format", &c.log_format)).ok())
    return st;
  lifecycle::RegistryOptions& lc = c.gateway.lifecycle;
  // The registry bounds a load by its own timeout too: the host's, or a longer load would be cut
  // at the registry's default (10 min) whatever lmstudio.load_timeout_seconds says.
  lc.load_timeout = c.host.load_timeout;
  if (doc.contains("default_ttl_seconds")) {
    absl::Duration ttl;
    if (!(st = ReadSeconds(doc["default_ttl_seconds"], "default_ttl_seconds", &ttl)).ok()) return st;
    if (ttl > absl::ZeroDuration()) lc.default_ttl = ttl;
  }
  if (doc.contains("allow_client_ttl") &&
      !(st = Read(doc["allow_client_ttl"], "allow_client_ttl", &lc.allow_client_ttl)).ok())
    return st;
  if (doc.contains("max_loaded_models") &&
      !(st = Read(doc["max_loaded_models"], "max_loaded_models", &lc.max_loaded_models)).ok())
    return st;
  if (doc.contains("max_loaded_bytes") &&
      !(st = Read(doc["max_loaded_bytes"], "max_loaded_bytes", &lc.max_loaded_bytes)).ok())
    return st;
  if (!(st = NotNegative(lc.max_loaded_models, "max_loaded_models", "unlimited")).ok()) return st;
  if (!(st = NotNegative(lc.max_loaded_bytes, "max_loaded_bytes", "unlimited")).ok()) return st;
  if (doc.contains("refresh_interval_seconds") &&
      !(st = ReadSeconds(doc["refresh_interval_seconds"], "refresh_interval_seconds",
                         &lc.refresh_interval))
           .ok())
    return st;
  if (doc.contains("unknown_model_cache_seconds") &&
      !(st = ReadSeconds(doc["unknown_model_cache_seconds"], "unknown_model_cache_seconds",
                         &lc.unknown_model_cache))
           .ok())
    return st;
  if (doc.contains("insecure") && !(st = Read(doc["insecure"], "insecure", &c.insecure)).ok())
    return st;
  if (doc.contains("max_json_depth")) {
    int& depth = c.gateway.max_json_depth;
    if (!(st = Read(doc["max_json_depth"], "max_json_depth", &depth)).ok()) return st;
    // Above the bound of JSON from the host, a tool call's arguments could not come back.
    if (depth < 1 || depth > backends::kMaxJsonDepth / 2) {
      return Bad("max_json_depth", absl::StrCat("must be 1..", backends::kMaxJsonDepth / 2));
    }
  }
  if (doc.contains("tls")) {
    const json& t = doc["tls"];
    if (!(st = CheckKeys(t, "tls", {"cert_file", "key_file", "client_ca_file",
                                     "require_client_cert"}))
             .ok())
      return st;
    if (t.contains("cert_file") && !(st = Read(t["cert_file"], "tls.cert_file", &c.tls_cert_file)).ok())
      return st;
    if (t.contains("key_file") && !(st = Read(t["key_file"], "tls.key_file", &c.tls_key_file)).ok())
      return st;
    if (t.contains("client_ca_file") &&
        !(st = Read(t["client_ca_file"], "tls.client_ca_file", &c.tls_client_ca_file)).ok())
      return st;
    if (t.contains("require_client_cert") &&
        !(st = Read(t["require_client_cert"], "tls.require_client_cert",
                    &c.tls_require_client_cert))
             .ok())
      return st;
  }
  if (doc.contains("metrics_listen") &&
      !(st = Read(doc["metrics_listen"], "metrics_listen", &c.metrics_listen)).ok())
    return st;
  if (doc.contains("metrics_max_connections") &&
      !(st = Read(doc["metrics_max_connections"], "metrics_max_connections",
                  &c.metrics_max_connections))
           .ok())
    return st;
  if (doc.contains("metrics_timeout_seconds") &&
      !(st = ReadSeconds(doc["metrics_timeout_seconds"], "metrics_timeout_seconds",
                         &c.metrics_timeout))
           .ok())
    return st;
  if (doc.contains("limits")) {
    const json& l = doc["limits"];  // keys checked by ParseLimits
    if (l.contains("stream_write_stall_seconds") &&
        !(st = ReadSeconds(l["stream_write_stall_seconds"], "limits.stream_write_stall_seconds",
                           &c.stream_write_stall))
             .ok())
      return st;
    if (l.contains("stream_max_pending_bytes") &&
        !(st = Read(l["stream_max_pending_bytes"], "limits.stream_max_pending_bytes",
                    &c.stream_max_pending_bytes))
             .ok())
      return st;
  }
  if (doc.contains("allow_cidrs") &&
      !(st = Read(doc["allow_cidrs"], "allow_cidrs", &c.identity.allow_cidrs)).ok())
    return st;
  if (doc.contains("keys")) {
    const json& keys = doc["keys"];
    if (!keys.is_array()) return Bad("keys", "must be an array");
    for (size_t i = 0; i < keys.size(); ++i) {
      const json& k = keys[i];
      const std::string where = absl::StrCat("keys[", i, "]");
      if (!(st = CheckKeys(k, where,
                           {"tenant", "key_sha256", "key_env", "key_file", "client_cn", "roles",
                            "models",
                            "requests_per_minute", "tokens_per_minute", "concurrent_streams",
                            "weight", "max_priority"}))
               .ok())
        return st;
      admission::KeyConfig kc;
      admission::Tenant& t = kc.tenant;
      if (k.contains("tenant") && !(st = Read(k["tenant"], where + ".tenant", &t.name)).ok())
        return st;
      if (k.contains("key_sha256") &&
          !(st = Read(k["key_sha256"], where + ".key_sha256", &kc.key_sha256)).ok())
        return st;
      if (k.contains("key_env") && !(st = Read(k["key_env"], where + ".key_env", &kc.key_env)).ok())
        return st;
      if (k.contains("key_file") &&
          !(st = Read(k["key_file"], where + ".key_file", &kc.key_file)).ok())
        return st;
      if (k.contains("client_cn") &&
          !(st = Read(k["client_cn"], where + ".client_cn", &kc.client_cn)).ok())
        return st;
      std::vector<std::string> roles = {"inference"};
      if (k.contains("roles") && !(st = Read(k["roles"], where + ".roles", &roles)).ok()) return st;
      t.inference = t.admin = false;
      for (const auto& r : roles) {
        if (r == "inference") {
          t.inference = true;
        } else if (r == "admin") {
          t.admin = true;
        } else {
          return Bad(where + ".roles", absl::StrCat("unknown role \"", r, "\" (inference, admin)"));
        }
      }
      if (k.contains("models") && !(st = Read(k["models"], where + ".models", &t.models)).ok())
        return st;
      if (k.contains("requests_per_minute") &&
          !(st = Read(k["requests_per_minute"], where + ".requests_per_minute",
                      &t.limits.requests_per_minute))
               .ok())
        return st;
      if (k.contains("tokens_per_minute") &&
          !(st = Read(k["tokens_per_minute"], where + ".tokens_per_minute",
                      &t.limits.tokens_per_minute))
               .ok())
        return st;
      if (k.contains("concurrent_streams") &&
          !(st = Read(k["concurrent_streams"], where + ".concurrent_streams",
                      &t.limits.concurrent_streams))
               .ok())
        return st;
      if (k.contains("weight") && !(st = Read(k["weight"], where + ".weight", &t.weight)).ok())
        return st;
      if (!(st = NotNegative(t.limits.requests_per_minute, where + ".requests_per_minute",
                             "unlimited"))
               .ok() ||
          !(st = NotNegative(t.limits.tokens_per_minute, where + ".tokens_per_minute",
                             "unlimited"))
               .ok() ||
          !(st = NotNegative(t.limits.concurrent_streams, where + ".concurrent_streams",
                             "unlimited"))
               .ok())
        return st;
      if (!(t.weight > 0 && t.weight <= 1e6)) {
        return Bad(where + ".weight", absl::StrCat("must be > 0 and <= 1e6, not ", t.weight));
      }
      if (k.contains("max_priority")) {
        std::string p;
        if (!(st = Read(k["max_priority"], where + ".max_priority", &p)).ok()) return st;
        if (p == "low") {
          t.max_priority = admission::Priority::kLow;
        } else if (p == "normal") {
          t.max_priority = admission::Priority::kNormal;
        } else if (p == "high") {
          t.max_priority = admission::Priority::kHigh;
        } else {
          return Bad(where + ".max_priority", "must be low, normal or high");
        }
      }
      c.identity.keys.push_back(std::move(kc));
    }
  }
  if (doc.contains("admission")) {
    const json& a = doc["admission"];
    admission::SchedulerOptions& ao = c.gateway.admission;
    if (!(st = CheckKeys(a, "admission",
                         {"concurrency_per_model", "max_concurrent_total", "max_queue_per_model",
                          "queue_timeout_seconds", "aging_seconds"}))
             .ok())
      return st;
    if (a.contains("concurrency_per_model") &&
        !(st = Read(a["concurrency_per_model"], "admission.concurrency_per_model",
                    &ao.default_concurrency))
             .ok())
      return st;
    if (a.contains("max_concurrent_total") &&
        !(st = Read(a["max_concurrent_total"], "admission.max_concurrent_total",
                    &ao.max_concurrent_total))
             .ok())
      return st;
    if (a.contains("max_queue_per_model") &&
        !(st = Read(a["max_queue_per_model"], "admission.max_queue_per_model", &ao.max_queue)).ok())
      return st;
    if (a.contains("queue_timeout_seconds") &&
        !(st = ReadSeconds(a["queue_timeout_seconds"], "admission.queue_timeout_seconds",
                           &ao.queue_timeout))
             .ok())
      return st;
    if (a.contains("aging_seconds") &&
        !(st = ReadSeconds(a["aging_seconds"], "admission.aging_seconds", &ao.aging)).ok())
      return st;
    if (ao.default_concurrency < 1) return Bad("admission.concurrency_per_model", "must be >= 1");
    if (ao.max_queue < 0) return Bad("admission.max_queue_per_model", "must be >= 0");
    if (!(st = NotNegative(ao.max_concurrent_total, "admission.max_concurrent_total", "unlimited"))
             .ok())
      return st;
    if (ao.queue_timeout <= absl::ZeroDuration())
      return Bad("admission.queue_timeout_seconds", "must be > 0");
  }
  if (doc.contains("limits") && !(st = ParseLimits(doc["limits"], &c.limits)).ok()) return st;
  if (doc.contains("cluster") &&
      !(st = config_internal::ParseCluster(doc["cluster"], &c.cluster)).ok())
    return st;
  if (doc.contains("conversations") &&
      !(st = ParseConversations(doc["conversations"], &c.conversations)).ok())
    return st;
  if (doc.contains("http_listen") &&
      !(st = Read(doc["http_listen"], "http_listen", &c.http_listen)).ok())
    return st;
  if (doc.contains("http") && !(st = ParseHttp(doc["http"], &c.http)).ok()) return st;
  if (doc.contains("models")) {
    const json& models = doc["models"];
    if (!models.is_object()) return Bad("models", "must be an object keyed by model key");
    for (const auto& [key, m] : models.items()) {
      const std::string where = "models." + key;
      if (!(st = ParseModelPolicy(m, where, &lc.models[key])).ok()) return st;
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::string& text) {
  auto doc = ParseConfigText(text, "config");
  if (!doc.ok()) return doc.status();
  return ParseConfigDocument(*doc);
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = ParseConfigText(ss.str(), path);
  if (!doc.ok()) return doc.status();
  auto c = ParseConfigDocument(*doc);
  if (!c.ok()) return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  return c;
}

namespace {

// "host:port", "[v6]:port" or ":port" with a port in 0..65535.
bool IsHostPort(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 == addr.size() || addr.size() - colon > 6) {
    return false;
  }
  int port = 0;
  for (size_t i = colon + 1; i < addr.size(); ++i) {
    if (addr[i] < '0' || addr[i] > '9') return false;
    port = port * 10 + (addr[i] - '0');
  }
  // "::1" alone: the last colon belongs to the address, not a port.
  const std::string host = addr.substr(0, colon);
  if (host.find(':') != std::string::npos && !(host.front() == '[' && host.back() == ']')) {
    return false;
  }
  return port <= 65535;
}

}  // namespace

absl::Status ValidateConfig(const Config& c, const std::vector<std::string>& known) {
  if (!IsHostPort(c.listen)) {
    return Bad("listen", absl::StrCat("\"", c.listen, "\" is not host:port (port 0..65535)"));
  }
  if (!c.metrics_listen.empty() && !IsHostPort(c.metrics_listen)) {
    return Bad("metrics_listen",
               absl::StrCat("\"", c.metrics_listen,
                            "\" is not host:port (port 0..65535; \"\" turns metrics off)"));
  }
  if (auto url = backends::http::ParseHostUrl(c.host.base_url); !url.ok()) {
    return Bad("lmstudio.url", std::string(url.status().message()));
  }
  if (c.drivers.empty()) return Bad("drivers", "enable at least one driver");
  std::set<std::string> seen;
  for (const auto& d : c.drivers) {
    if (std::find(known.begin(), known.end(), d) == known.end()) {
      return Bad("drivers", absl::StrCat("unknown driver \"", d, "\"; known: ",
                                         absl::StrJoin(known, ", ")));
    }
    if (!seen.insert(d).second) return Bad("drivers", absl::StrCat("\"", d, "\" listed twice"));
  }
  if (c.worker_threads < 1 || c.worker_threads > 4096) return Bad("worker_threads", "must be 1..4096");
  if (c.metrics_max_connections < 1 || c.metrics_max_connections > 1024)
    return Bad("metrics_max_connections", "must be 1..1024");
  if (c.metrics_timeout <= absl::ZeroDuration()) return Bad("metrics_timeout_seconds", "must be > 0");
  if (c.shutdown_grace < absl::ZeroDuration()) return Bad("shutdown_grace_seconds", "must be >= 0");
  if (c.drain_delay < absl::ZeroDuration()) return Bad("drain_delay_seconds", "must be >= 0");
  if (c.host.max_retries < 0 || c.host.max_retries > 10) return Bad("lmstudio.max_retries", "must be 0..10");
  if (c.host.connect_timeout <= absl::ZeroDuration()) return Bad("lmstudio.connect_timeout_seconds", "must be > 0");
  if (c.host.request_timeout <= absl::ZeroDuration()) return Bad("lmstudio.request_timeout_seconds", "must be > 0");
  if (c.host.load_timeout <= absl::ZeroDuration()) return Bad("lmstudio.load_timeout_seconds", "must be > 0");
  if (c.host.idle_timeout <= absl::ZeroDuration()) return Bad("lmstudio.idle_timeout_seconds", "must be > 0");
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
  if (!kLevels.count(c.log_level)) return Bad("log_level", "must be trace|debug|info|warn|error|off");
  if (c.log_format != "text" && c.log_format != "json") return Bad("log_format", "must be text|json");
  if (auto st = config_internal::ValidateCluster(c.cluster); !st.ok()) return st;
  const bool loopback = IsLoopbackListen(c.listen);
  if (!c.http_listen.empty()) {
    if (!IsHostPort(c.http_listen)) {
      return Bad("http_listen", absl::StrCat("\"", c.http_listen,
                                             "\" is not host:port (port 0..65535; \"\" = off)"));
    }
    if (!c.tls_cert_file.empty()) {
      return Bad("http_listen", "the HTTP ingress does not serve TLS yet; with tls configured, "
                                "leave http_listen empty or terminate TLS in a proxy in front of "
                                "a loopback http_listen on a config without tls");
    }
    if (!IsLoopbackListen(c.http_listen) && c.identity.keys.empty() && !c.insecure) {
      return Bad("http_listen", absl::StrCat("\"", c.http_listen,
                                             "\" is not a loopback address and no API keys are "
                                             "configured; add keys, or pass --insecure"));
    }
    if (c.http_listen == c.listen && !absl::EndsWith(c.listen, ":0")) {
      return Bad("http_listen", "must differ from listen");
    }
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return Bad("tls", "set both cert_file and key_file");
  }
  if (c.tls_require_client_cert && c.tls_client_ca_file.empty()) {
    return Bad("tls.require_client_cert", "needs tls.client_ca_file");
  }
  if (!loopback && c.identity.keys.empty() && !c.tls_require_client_cert && !c.insecure) {
    return Bad("listen", absl::StrCat("\"", c.listen, "\" is not a loopback address and no API keys "
                                      "are configured; add keys, or pass --insecure to serve "
                                      "anyone who can reach the port"));
  }
  return absl::OkStatus();
}

}  // namespace lmgate::services
