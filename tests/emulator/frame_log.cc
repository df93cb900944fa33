#include "tests/emulator/frame_log.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/json.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;

constexpr size_t kMaxParsedBytes = 64 * 1024;
constexpr size_t kKeptTextBytes = 4 * 1024;
constexpr const char* kLoggedHeaders[] = {"traceparent", "tracestate", "authorization",
                                          "user-agent", "content-type"};

// Sets entry["json"] or entry["text"] (+ "truncated") from a frame or body.
void AddPayload(json& entry, const std::string& text) {
  entry["bytes"] = text.size();
  if (text.empty()) return;
  if (text.size() > kMaxParsedBytes) {
    entry["text"] = text.substr(0, kKeptTextBytes);
    entry["truncated"] = true;
    return;
  }
  absl::StatusOr<json> result = backends::ParseBoundedJson(text, "the frame");
  if (!result.ok()) {  // not JSON, or nested too deep to copy safely
    entry["text"] = text;
    return;
  }
  json parsed = *std::move(result);
  // The WebSocket auth packet's passkey is a secret (the identifier half of a token is not).
  if (parsed.is_object() && parsed.contains("clientPasskey")) parsed["clientPasskey"] = "<redacted>";
  entry["json"] = std::move(parsed);
}

json SelectedHeaders(const Headers& headers) {
  json out = json::object();
  for (const auto& [name, value] : headers) {
    const std::string lower = absl::AsciiStrToLower(name);
    for (const char* wanted : kLoggedHeaders) {
      if (lower != wanted) continue;
      out[lower] = lower == "authorization" ? RedactAuthorization(value) : value;
    }
  }
  return out;
}

}  // namespace

std::string RedactAuthorization(const std::string& value) {
  if (value.empty()) return "";
  const size_t space = value.find(' ');
  if (space == std::string::npos) return "<redacted>";
  const std::string scheme = value.substr(0, space);
  const std::string credential = value.substr(space + 1);
  const size_t colon = credential.find(':');
  if (absl::StartsWith(credential, "sk-lm-") && colon != std::string::npos) {
    return absl::StrCat(scheme, " ", credential.substr(0, colon + 1), "<redacted>");
  }
  return absl::StrCat(scheme, " <redacted>");
}

absl::StatusOr<std::unique_ptr<FrameLog>> FrameLog::Create(FrameLogOptions options) {
  std::unique_ptr<FrameLog> log(new FrameLog(options));
  if (!options.path.empty()) {
    std::FILE* f = std::fopen(options.path.c_str(), "a");
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("log_frames: cannot open ", options.path,
                                                     " for appending: ", std::strerror(errno)));
    }
    absl::MutexLock l(&log->mu_);
    log->file_.reset(f);
  }
  return log;
}

FrameLog::~FrameLog() = default;

void FrameLog::RecordWsOpen(const std::string& ns, const Headers& headers) {
  json e = {{"direction", "in"}, {"transport", "ws"}, {"event", "open"}, {"namespace", ns},
            {"headers", SelectedHeaders(headers)}};
  Append(std::move(e), 0);
}

void FrameLog::RecordWsFrame(bool incoming, const std::string& ns, const std::string& text) {
  if (!incoming && !options_.log_outgoing) return;
  json e = {{"direction", incoming ? "in" : "out"}, {"transport", "ws"}, {"event", "frame"},
            {"namespace", ns}};
  AddPayload(e, text);
  Append(std::move(e), text.size());
}

void FrameLog::RecordHttpRequest(const std::string& method, const std::string& target,
                                 const Headers& headers, const std::string& body) {
  const size_t q = target.find('?');
  json e = {{"direction", "in"}, {"transport", "http"}, {"event", "request"}, {"method", method},
            {"path", target.substr(0, q)}, {"headers", SelectedHeaders(headers)}};
  if (q != std::string::npos) e["query"] = target.substr(q + 1);
  AddPayload(e, body);
  Append(std::move(e), body.size());
}

void FrameLog::Append(json entry, size_t raw_bytes) {
  const size_t kept = std::min(raw_bytes, kMaxParsedBytes) + 256;
  absl::MutexLock l(&mu_);
  entry["seq"] = next_seq_++;
  entry["time_ms"] = absl::ToUnixMillis(absl::Now());
  if (file_ != nullptr) {
    const std::string line = absl::StrCat(entry.dump(-1, ' ', false, json::error_handler_t::replace), "\n");
    std::fwrite(line.data(), 1, line.size(), file_.get());
    std::fflush(file_.get());
  }
  entries_.emplace_back(std::move(entry), kept);
  bytes_ += kept;
  while (!entries_.empty() &&
         (entries_.size() > options_.max_entries || bytes_ > options_.max_bytes)) {
    bytes_ -= entries_.front().second;
    entries_.pop_front();
    ++dropped_;
  }
}

std::vector<json> FrameLog::Frames() const {
  absl::MutexLock l(&mu_);
  std::vector<json> out;
  out.reserve(entries_.size());
  for (const auto& [entry, bytes] : entries_) out.push_back(entry);
  return out;
}

int64_t FrameLog::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

void FrameLog::Clear() {
  absl::MutexLock l(&mu_);
  entries_.clear();
  bytes_ = 0;
  dropped_ = 0;
}

}  // namespace lmgate::emulator
