// The readers every section of the config file uses, and the sections parsed in files of their
// own (internal to //services:config). Every error is INVALID_ARGUMENT "config: KEY: why".
#ifndef LMGATE_SERVICES_CONFIG_INTERNAL_H_
#define LMGATE_SERVICES_CONFIG_INTERNAL_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/cluster/options.h"

namespace lmgate::services::config_internal {

using nlohmann::json;

inline absl::Status Bad(const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", key, ": ", why));
}

// Reads durations as numbers of seconds (fractions allowed).
inline absl::Status ReadSeconds(const json& j, const std::string& key, absl::Duration* out) {
  if (!j.is_number()) return Bad(key, "must be a number of seconds");
  double s = j.get<double>();
  if (!(s >= 0)) return Bad(key, "must be >= 0");
  *out = absl::Seconds(s);
  return absl::OkStatus();
}

// An integer field: a JSON integer, or a number with an integral value (8e3), in T's range.
// nlohmann's get<T>() static_casts any number: 1.5 would silently become 1, 4294967297 would wrap
// to 1, and 1e30 is undefined behaviour (found by the config fuzzer).
template <typename T>
absl::Status ReadInteger(const json& j, const std::string& key, T* out) {
  using Limits = std::numeric_limits<T>;
  const auto out_of_range = [&] {
    return Bad(key, absl::StrCat("must be an integer in [", Limits::min(), ", ", Limits::max(), "]"));
  };
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(Limits::max())) return out_of_range();
    *out = static_cast<T>(v);
  } else if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if constexpr (std::is_signed_v<T>) {
      if (v < Limits::min() || v > Limits::max()) return out_of_range();
    } else {
      if (v < 0 || static_cast<uint64_t>(v) > Limits::max()) return out_of_range();
    }
    *out = static_cast<T>(v);
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!std::isfinite(d) || d != std::trunc(d)) return Bad(key, "must be an integer");
    // [min, 2^digits): both bounds are exact doubles (min is 0 or a negative power of two).
    if (!(d >= static_cast<double>(Limits::min()) && d < std::ldexp(1.0, Limits::digits))) {
      return out_of_range();
    }
    *out = static_cast<T>(d);
  } else {
    return Bad(key, absl::StrCat("wrong type (must be an integer, not ", j.type_name(), ")"));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Read(const json& j, const std::string& key, T* out) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return ReadInteger(j, key, out);
  } else {
    try {
      *out = j.get<T>();
    } catch (const json::exception& e) {
      return Bad(key, absl::StrCat("wrong type (", e.what(), ")"));
    }
    return absl::OkStatus();
  }
}

inline absl::Status CheckKeys(const json& obj, const std::string& where,
                              const std::set<std::string>& allowed) {
  if (!obj.is_object()) return Bad(where.empty() ? "<top>" : where, "must be an object");
  for (const auto& [k, v] : obj.items()) {
    if (!allowed.count(k)) {
      return Bad(where.empty() ? k : where + "." + k,
                 absl::StrCat("unknown key; allowed: ", absl::StrJoin(allowed, ", ")));
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status ReadOpt(const json& obj, const std::string& where, const char* key,
                     std::optional<T>* out) {
  if (!obj.contains(key)) return absl::OkStatus();
  T v{};
  if (auto st = Read(obj[key], where + "." + key, &v); !st.ok()) return st;
  *out = v;
  return absl::OkStatus();
}

// The `cluster` section (config_cluster.cc): its keys into `out`, then, in ValidateConfig, the
// checks that need them all (the URL, the password variable, the bounds).
absl::Status ParseCluster(const json& j, cluster::ClusterOptions* out);
absl::Status ValidateCluster(const cluster::ClusterOptions& c);

}  // namespace lmgate::services::config_internal

#endif  // LMGATE_SERVICES_CONFIG_INTERNAL_H_
