// How lmgate's log lines look on stdout: one format for every line (`log_format`: text or json),
// whichever logger wrote it — the default logger, the per-component loggers the drivers clone from
// it (they share its sinks), the access log and the lifecycle-event log.
//
// Structured records (one per RPC, one per lifecycle event) go through LogRecord(): in json they
// are the line's JSON object; in text, "<what> key=value ..." after the usual prefix. Other lines
// are {"ts","level","logger","msg"} objects in json. Thread-safe.
#ifndef LMGATE_SERVICES_LOGGING_H_
#define LMGATE_SERVICES_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lmgate::services {

enum class LogFormat { kText, kJson };

// The format of structured records (json until set, as lmgate always printed its access log).
LogFormat CurrentLogFormat();
void SetLogFormat(LogFormat format);

// SetLogFormat(format), and installs the formatter that applies it on the default logger's sinks:
// every logger cloned from it, before or after, shares them. Call once at start, before threads.
void SetupLogging(LogFormat format);

// Writes one structured record at `level` through `logger` ("access", "lifecycle"): `fields` as the
// whole JSON line in json, "<what> k=v k=v" in text (strings quoted when they need it).
void LogRecord(spdlog::logger& logger, spdlog::level::level_enum level, absl::string_view what,
               const nlohmann::json& fields);

// A logger named `name` sharing the default logger's sinks, made on first use and kept: set the
// default logger before the first record. Thread-safe.
spdlog::logger& RecordLogger(const std::string& name);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_LOGGING_H_
