#include "services/config_text.h"

#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/json.h"
#include "services/cluster/redis.h"
#include "services/config.h"

namespace lmgate::services {
namespace {

using nlohmann::json;

// 1-based line and column of the byte at 0-based `index` (clamped to the text).
std::pair<int, int> LineColumn(const std::string& text, size_t index) {
  if (index > text.size()) index = text.size();
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < index; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<int>(index - line_start) + 1};
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line L, column C: why".
std::string Reason(const json::parse_error& e) {
  const std::string what = e.what();
  const size_t colon = what.find(": ");
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// Finds a key given twice in one object. Runs on text nlohmann accepted, so it only has to tell
// strings, comments and structure apart. Keys are compared decoded ("a" == "\u0061").
absl::Status CheckDuplicateKeys(const std::string& text, const std::string& source) {
  struct Frame {
    bool object = false;
    std::string path;                 // "" for the top level, "lmstudio", "keys[1]", ...
    std::map<std::string, int> keys;  // key -> line of its first occurrence
    bool expect_key = false;
    std::string last_key;
    int index = 0;  // arrays: the element being read
  };
  std::vector<Frame> stack;
  int line = 1;
  auto child_path = [&]() -> std::string {
    if (stack.empty()) return "";
    const Frame& f = stack.back();
    if (f.object) return f.path.empty() ? f.last_key : absl::StrCat(f.path, ".", f.last_key);
    return absl::StrCat(f.path, "[", f.index, "]");
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      for (i += 2; i + 1 < text.size() && !(text[i] == '*' && text[i + 1] == '/'); ++i) {
        if (text[i] == '\n') ++line;
      }
      ++i;
    } else if (c == '"') {
      const size_t start = i;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      if (stack.empty() || !stack.back().object || !stack.back().expect_key) continue;
      Frame& f = stack.back();
      f.expect_key = false;
      // The scan's view of a string can differ from the parser's on malformed text (a NUL byte
      // ends nlohmann's input): a key it cannot read is a syntax error, never an exception.
      const json key = json::parse(text.substr(start, i - start + 1), nullptr,
                                   /*allow_exceptions=*/false);
      if (!key.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ":", line, ": not valid JSON: unreadable key"));
      }
      f.last_key = key.get<std::string>();
      auto [it, inserted] = f.keys.emplace(f.last_key, line);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": duplicate key \"", f.last_key, "\" at line ", line, " (in ",
            f.path.empty() ? "the top-level object" : f.path, "; first at line ", it->second,
            ")"));
      }
    } else if (c == '{' || c == '[') {
      Frame f;
      f.object = c == '{';
      f.path = child_path();
      f.expect_key = f.object;
      stack.push_back(std::move(f));
    } else if (c == '}' || c == ']') {
      if (!stack.empty()) stack.pop_back();
    } else if (c == ',' && !stack.empty()) {
      if (stack.back().object) {
        stack.back().expect_key = true;
      } else {
        ++stack.back().index;
      }
    }
  }
  return absl::OkStatus();
}

// Printing keeps the order of the keys in the file's documentation (deploy/CONFIG.md).
using Out = nlohmann::ordered_json;

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

template <typename T>
void PutOpt(Out& obj, const char* key, const std::optional<T>& v) {
  if (v) obj[key] = *v;
}

Out ModelPolicyJson(const lifecycle::ModelPolicy& p) {
  Out m = Out::object();
  const backends::LoadParams& l = p.load;
  PutOpt(m, "context_length", l.context_length);
  PutOpt(m, "gpu_offload_ratio", l.gpu_offload_ratio);
  PutOpt(m, "cpu_threads", l.cpu_threads);
  PutOpt(m, "rope_frequency_base", l.rope_frequency_base);
  PutOpt(m, "rope_frequency_scale", l.rope_frequency_scale);
  PutOpt(m, "flash_attention", l.flash_attention);
  PutOpt(m, "parallel_slots", l.parallel_slots);
  PutOpt(m, "eval_batch_size", l.eval_batch_size);
  if (p.ttl) m["ttl_seconds"] = Seconds(*p.ttl);
  m["keep_loaded"] = p.keep_loaded;
  Out s = Out::object();
  const backends::Sampling& d = p.sampling;
  PutOpt(s, "temperature", d.temperature);
  PutOpt(s, "top_p", d.top_p);
  PutOpt(s, "top_k", d.top_k);
  PutOpt(s, "min_p", d.min_p);
  PutOpt(s, "max_tokens", d.max_tokens);
  if (!d.stop.empty()) s["stop"] = d.stop;
  PutOpt(s, "presence_penalty", d.presence_penalty);
  PutOpt(s, "frequency_penalty", d.frequency_penalty);
  PutOpt(s, "repeat_penalty", d.repeat_penalty);
  PutOpt(s, "seed", d.seed);
  if (!s.empty()) m["sampling"] = std::move(s);
  return m;
}

Out KeyJson(const admission::KeyConfig& k) {
  const admission::Tenant& t = k.tenant;
  Out j = Out::object();
  j["tenant"] = t.name;
  // Names of where the key is, or its digest: never the key itself (Config holds no key).
  if (!k.key_sha256.empty()) j["key_sha256"] = k.key_sha256;
  if (!k.key_env.empty()) j["key_env"] = k.key_env;
  if (!k.key_file.empty()) j["key_file"] = k.key_file;
  if (!k.client_cn.empty()) j["client_cn"] = k.client_cn;
  Out roles = Out::array();
  if (t.inference) roles.push_back("inference");
  if (t.admin) roles.push_back("admin");
  j["roles"] = std::move(roles);
  j["models"] = t.models;
  j["requests_per_minute"] = t.limits.requests_per_minute;
  j["tokens_per_minute"] = t.limits.tokens_per_minute;
  j["concurrent_streams"] = t.limits.concurrent_streams;
  j["weight"] = t.weight;
  j["max_priority"] = t.max_priority == admission::Priority::kLow      ? "low"
                      : t.max_priority == admission::Priority::kNormal ? "normal"
                                                                       : "high";
  return j;
}

}  // namespace

absl::StatusOr<json> ParseConfigText(const std::string& text, const std::string& source) {
  // Bounded before nlohmann parses (its parser and copies recurse): backends/json.h.
  if (backends::JsonDepth(text) > backends::kMaxJsonDepth) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is nested deeper than ",
                                                   backends::kMaxJsonDepth, " levels"));
  }
  json doc;
  try {
    doc = json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the character that failed.
    const auto [line, column] = LineColumn(text, e.byte == 0 ? 0 : e.byte - 1);
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", line, ":", column, ": not valid JSON: ", Reason(e)));
  } catch (const json::exception& e) {
    // out_of_range: a number beyond double ("1e309").
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
  }
  if (auto st = CheckDuplicateKeys(text, source); !st.ok()) return st;
  return doc;
}

std::string ConfigToJson(const Config& c) {
  Out out;
  out["listen"] = c.listen;
  Out h = Out::object();
  h["url"] = c.host.base_url;
  // The token is never printed: its variable's name if it came from one, else a marker.
  if (!c.api_token_env.empty()) {
    h["api_token_env"] = c.api_token_env;
  } else if (!c.host.api_token.empty()) {
    h["api_token"] = kRedacted;
  }
  h["connect_timeout_seconds"] = Seconds(c.host.connect_timeout);
  h["request_timeout_seconds"] = Seconds(c.host.request_timeout);
  h["load_timeout_seconds"] = Seconds(c.host.load_timeout);
  h["idle_timeout_seconds"] = Seconds(c.host.idle_timeout);
  h["max_retries"] = c.host.max_retries;
  h["lms_path"] = c.host.lms_path;
  out["lmstudio"] = std::move(h);
  out["drivers"] = c.drivers;
  out["prefer_configured_order"] = c.prefer_configured_order;
  out["default_model"] = c.gateway.default_model;
  out["default_embedding_model"] = c.gateway.default_embedding_model;
  const lifecycle::RegistryOptions& lc = c.gateway.lifecycle;
  out["default_ttl_seconds"] = lc.default_ttl ? Seconds(*lc.default_ttl) : 0.0;  // 0 = never
  out["allow_client_ttl"] = lc.allow_client_ttl;
  out["max_loaded_models"] = lc.max_loaded_models;
  out["max_loaded_bytes"] = lc.max_loaded_bytes;
  out["refresh_interval_seconds"] = Seconds(lc.refresh_interval);
  out["unknown_model_cache_seconds"] = Seconds(lc.unknown_model_cache);
  Out models = Out::object();
  for (const auto& [key, policy] : lc.models) models[key] = ModelPolicyJson(policy);
  out["models"] = std::move(models);
  const admission::SchedulerOptions& a = c.gateway.admission;
  out["admission"] = {{"concurrency_per_model", a.default_concurrency},
                      {"max_concurrent_total", a.max_concurrent_total},
                      {"max_queue_per_model", a.max_queue},
                      {"queue_timeout_seconds", Seconds(a.queue_timeout)},
                      {"aging_seconds", Seconds(a.aging)}};
  Out keys = Out::array();
  for (const auto& k : c.identity.keys) keys.push_back(KeyJson(k));
  out["keys"] = std::move(keys);
  out["allow_cidrs"] = c.identity.allow_cidrs;
  out["tls"] = {{"cert_file", c.tls_cert_file},
                {"key_file", c.tls_key_file},
                {"client_ca_file", c.tls_client_ca_file},
                {"require_client_cert", c.tls_require_client_cert}};
  out["metrics_listen"] = c.metrics_listen;
  out["metrics_max_connections"] = c.metrics_max_connections;
  out["metrics_timeout_seconds"] = Seconds(c.metrics_timeout);
  out["max_json_depth"] = c.gateway.max_json_depth;
  const TransportLimits& l = c.limits;
  out["limits"] = {{"max_request_bytes", l.max_request_bytes},
                   {"server_memory_bytes", l.server_memory_bytes},
                   {"max_concurrent_streams_per_connection",
                    l.max_concurrent_streams_per_connection},
                   {"max_connections", l.max_connections},
                   {"handshake_timeout_seconds", Seconds(l.handshake_timeout)},
                   {"stream_write_stall_seconds", Seconds(c.stream_write_stall)},
                   {"stream_max_pending_bytes", c.stream_max_pending_bytes}};
  const cluster::ClusterOptions& cl = c.cluster;
  // The URL without its password (the variable's name says where one comes from).
  std::string redis_url = cl.redis_url;
  if (auto u = cluster::ParseRedisUrl(cl.redis_url); cl.enabled() && u.ok()) {
    const bool v6 = u->host.find(':') != std::string::npos;
    redis_url = absl::StrCat("redis://", u->password.empty() ? "" : "<redacted>@",
                             v6 ? "[" : "", u->host, v6 ? "]" : "", ":", u->port, "/", u->db);
  }
  out["cluster"] = {{"redis_url", redis_url},
                    {"redis_password_env", cl.redis_password_env},
                    {"on_redis_error",
                     cl.on_redis_error == cluster::OnRedisError::kOpen ? "open" : "closed"},
                    {"command_timeout_seconds", Seconds(cl.command_timeout)},
                    {"heartbeat_seconds", Seconds(cl.heartbeat)}};
  out["conversations"] = {{"ttl_seconds", Seconds(c.conversations.ttl)},
                          {"max_entries", c.conversations.max_entries},
                          {"max_bytes", c.conversations.max_bytes},
                          {"max_conversation_bytes", c.conversations.max_conversation_bytes}};
  out["http_listen"] = c.http_listen;
  out["http"] = {{"threads", c.http.threads},
                 {"max_body_bytes", c.http.max_body_bytes},
                 {"max_header_bytes", c.http.max_header_bytes},
                 {"max_headers", c.http.max_headers},
                 {"max_connections", c.http.max_connections},
                 {"idle_timeout_seconds", Seconds(c.http.idle_timeout)},
                 {"read_timeout_seconds", Seconds(c.http.read_timeout)}};
  out["insecure"] = c.insecure;
  out["worker_threads"] = c.worker_threads;
  out["shutdown_grace_seconds"] = Seconds(c.shutdown_grace);
  out["drain_delay_seconds"] = Seconds(c.drain_delay);
  out["ready_requires_pinned"] = c.ready_requires_pinned;
  out["log_level"] = c.log_level;
  out["log_format"] = c.log_format;
  return out.dump(2) + "\n";
}

}  // namespace lmgate::services
