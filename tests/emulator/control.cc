#include "tests/emulator/control.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace lmgate::emulator {

using nlohmann::json;

namespace {

template <typename T>
absl::Status Take(const json& j, const char* key, T* out) {
  if (!j.contains(key)) return absl::OkStatus();
  const json& v = j[key];
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a boolean"));
  } else {
    if (!v.is_number()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a number"));
  }
  *out = v.get<T>();
  return absl::OkStatus();
}

#define EMU_TAKE(j, name, field)                        \
  do {                                                  \
    absl::Status s_ = Take((j), name, &(field));        \
    if (!s_.ok()) return s_;                            \
  } while (0)

}  // namespace

json Settings::ToJson() const {
  return {{"ttft_ms", ttft_ms},
          {"tokens_per_second", tokens_per_second},
          {"load_ms_per_gb", load_ms_per_gb},
          {"load_progress_steps", load_progress_steps},
          {"jit_enabled", jit_enabled},
          {"auto_evict", auto_evict},
          {"jit_default_ttl_ms", jit_default_ttl_ms},
          {"default_parallel", default_parallel},
          {"min_response_tokens", min_response_tokens},
          {"max_response_tokens", max_response_tokens},
          {"v0_identifier_rows", v0_identifier_rows},
          {"lm_link_status", lm_link_status},
          {"omit_default_parallel", omit_default_parallel}};
}

absl::Status Settings::Apply(const json& u) {
  if (!u.is_object()) return absl::InvalidArgumentError("settings update must be an object");
  const json known = ToJson();
  for (auto& [k, v] : u.items()) {
    if (!known.contains(k)) return absl::InvalidArgumentError(absl::StrCat("unknown setting ", k));
  }
  Settings s = *this;
  EMU_TAKE(u, "ttft_ms", s.ttft_ms);
  EMU_TAKE(u, "tokens_per_second", s.tokens_per_second);
  EMU_TAKE(u, "load_ms_per_gb", s.load_ms_per_gb);
  EMU_TAKE(u, "load_progress_steps", s.load_progress_steps);
  EMU_TAKE(u, "jit_enabled", s.jit_enabled);
  EMU_TAKE(u, "auto_evict", s.auto_evict);
  EMU_TAKE(u, "jit_default_ttl_ms", s.jit_default_ttl_ms);
  EMU_TAKE(u, "default_parallel", s.default_parallel);
  EMU_TAKE(u, "min_response_tokens", s.min_response_tokens);
  EMU_TAKE(u, "max_response_tokens", s.max_response_tokens);
  EMU_TAKE(u, "v0_identifier_rows", s.v0_identifier_rows);
  EMU_TAKE(u, "lm_link_status", s.lm_link_status);
  EMU_TAKE(u, "omit_default_parallel", s.omit_default_parallel);
  if (s.ttft_ms < 0 || s.tokens_per_second < 0 || s.load_ms_per_gb < 0 ||
      s.load_progress_steps < 1 || s.default_parallel < 1 || s.min_response_tokens < 1 ||
      s.max_response_tokens < s.min_response_tokens) {
    return absl::InvalidArgumentError("settings out of range");
  }
  *this = s;
  return absl::OkStatus();
}

json Faults::ToJson() const {
  return {{"drop_after_fragments", drop_after_fragments},
          {"http_error_count", http_error_count},
          {"http_error_status", http_error_status},
          {"stall_after_fragments", stall_after_fragments},
          {"stall_ms", stall_ms},
          {"load_time_multiplier", load_time_multiplier},
          {"jit_window_ms", jit_window_ms},
          {"jit_window_status", jit_window_status},
          {"fail_next_loads", fail_next_loads}};
}

absl::Status Faults::Apply(const json& u) {
  if (!u.is_object()) return absl::InvalidArgumentError("faults update must be an object");
  Faults f = u.value("clear", false) ? Faults() : *this;
  const json known = ToJson();
  for (auto& [k, v] : u.items()) {
    if (!known.contains(k) && k != "clear" && k != "http_error" && k != "stall" &&
        k != "refuse_connections_ms" && k != "drop_existing_connections") {
      return absl::InvalidArgumentError(absl::StrCat("unknown fault ", k));
    }
  }
  EMU_TAKE(u, "drop_after_fragments", f.drop_after_fragments);
  EMU_TAKE(u, "http_error_count", f.http_error_count);
  EMU_TAKE(u, "http_error_status", f.http_error_status);
  EMU_TAKE(u, "stall_after_fragments", f.stall_after_fragments);
  EMU_TAKE(u, "stall_ms", f.stall_ms);
  EMU_TAKE(u, "load_time_multiplier", f.load_time_multiplier);
  EMU_TAKE(u, "jit_window_ms", f.jit_window_ms);
  EMU_TAKE(u, "jit_window_status", f.jit_window_status);
  EMU_TAKE(u, "fail_next_loads", f.fail_next_loads);
  if (u.contains("http_error")) {
    if (!u["http_error"].is_object()) return absl::InvalidArgumentError("http_error: object");
    f.http_error_count = 1;
    EMU_TAKE(u["http_error"], "count", f.http_error_count);
    EMU_TAKE(u["http_error"], "status", f.http_error_status);
  }
  if (u.contains("stall")) {
    if (!u["stall"].is_object()) return absl::InvalidArgumentError("stall: object");
    f.stall_after_fragments = 0;
    EMU_TAKE(u["stall"], "after_fragments", f.stall_after_fragments);
    EMU_TAKE(u["stall"], "ms", f.stall_ms);
  }
  if (f.http_error_status < 100 || f.http_error_status > 599 || f.jit_window_status < 100 ||
      f.jit_window_status > 599 || f.load_time_multiplier < 0) {
    return absl::InvalidArgumentError("faults out of range");
  }
  *this = f;
  return absl::OkStatus();
}

}  // namespace lmgate::emulator
