#include "backends/cli/lms_output.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/sdk_ws/codec.h"
#include "backends/sdk_ws/protocol.h"

namespace lmgate::backends::cli {
namespace {

using sdk_ws::Json;

// One line, whitespace runs collapsed, at most `max` bytes: for error messages.
std::string OneLine(absl::string_view text, size_t max = 300) {
  std::string out;
  bool space = false;
  for (char c : StripAnsi(text)) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() >= max) {
      out.append("...");
      break;
    }
  }
  return out;
}

bool IsArray(const absl::StatusOr<Json>& j) { return j.ok() && j->is_array(); }

// The JSON array `lms` printed: all of stdout, or else the last line that is one (older or dev
// builds may print other lines first).
absl::StatusOr<Json> ParseArray(absl::string_view text, absl::string_view what) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty()) {
    return absl::InternalError(absl::StrCat(what, " printed nothing on stdout"));
  }
  absl::StatusOr<Json> whole = sdk_ws::ParseJson(trimmed, what);
  if (IsArray(whole)) return whole;
  std::vector<absl::string_view> lines = absl::StrSplit(trimmed, '\n');
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    absl::string_view line = absl::StripAsciiWhitespace(*it);
    if (!absl::StartsWith(line, "[")) continue;
    absl::StatusOr<Json> parsed = sdk_ws::ParseJson(line, what);
    if (IsArray(parsed)) return parsed;
  }
  return absl::InternalError(
      absl::StrCat(what, " did not print a JSON array: ", OneLine(trimmed, 200)));
}

// Case-insensitive: message wording varies in case between CLI versions ("Model not found" on
// load, "Model Not Found" on unload).
bool ContainsAny(absl::string_view lowered_text, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(lowered_text, absl::AsciiStrToLower(n))) return true;
  }
  return false;
}

}  // namespace

std::string StripAnsi(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\x1b') {
      out.push_back(text[i]);
      continue;
    }
    // CSI: ESC '[' parameters/intermediates, then one final byte in 0x40..0x7e.
    if (i + 1 < text.size() && text[i + 1] == '[') {
      size_t j = i + 2;
      while (j < text.size() && !(text[j] >= 0x40 && text[j] <= 0x7e)) ++j;
      i = j;  // the final byte (or the end)
    } else if (i + 1 < text.size()) {
      ++i;  // a two-byte escape
    }
  }
  return out;
}

absl::StatusOr<std::vector<LsModel>> ParseLsJson(absl::string_view stdout_text) {
  absl::StatusOr<Json> array = ParseArray(stdout_text, "lms ls --json");
  if (!array.ok()) return array.status();
  std::vector<LsModel> out;
  for (const Json& element : *array) {
    const Json* info = &element;
    if (const Json* model = sdk_ws::Member(element, "model"); model != nullptr) info = model;
    if (!info->is_object() || sdk_ws::StringMember(*info, "modelKey").empty()) continue;
    out.push_back({sdk_ws::DecodeModelInfo(*info), sdk_ws::StringMember(*info, "path")});
  }
  return out;
}

absl::StatusOr<std::vector<InstanceInfo>> ParsePsJson(absl::string_view stdout_text) {
  absl::StatusOr<Json> array = ParseArray(stdout_text, "lms ps --json");
  if (!array.ok()) return array.status();
  std::vector<InstanceInfo> out;
  for (const Json& element : *array) {
    if (!element.is_object() || sdk_ws::StringMember(element, "identifier").empty()) continue;
    InstanceInfo info = sdk_ws::DecodeInstanceInfo(element);
    std::optional<int64_t> parallel = sdk_ws::IntMember(element, "parallel");
    if (parallel.has_value() && *parallel > 0 && *parallel <= INT32_MAX) {
      info.parallel_slots = static_cast<int>(*parallel);
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<std::string> ParseLoadedIdentifier(absl::string_view output) {
  static constexpr char kMarker[] = "use the identifier \"";
  const std::string text = StripAnsi(output);
  size_t at = text.rfind(kMarker);
  if (at == std::string::npos) return std::nullopt;
  absl::string_view rest = absl::string_view(text).substr(at + sizeof(kMarker) - 1);
  rest = rest.substr(0, rest.find('\n'));
  // The line ends with `".`; the identifier itself may contain quotes.
  size_t close = rest.rfind('"');
  if (close == absl::string_view::npos || close == 0) return std::nullopt;
  return std::string(rest.substr(0, close));
}

LmsDiagnostic ClassifyDiagnostics(absl::string_view stderr_text) {
  const std::string text = absl::AsciiStrToLower(StripAnsi(stderr_text));
  // findLMStudioHome() at start-up: Node's uncaught fs error on the pointer file. (Paths under
  // ~/.lmstudio alone prove nothing: the host's own errors name its models folder.)
  if (ContainsAny(text, {".lmstudio-home-pointer"})) return LmsDiagnostic::kHomeUnusable;
  if (ContainsAny(text, {"does not appear to be running", "Failed to start or connect",
                         "Failed to connect using", "ECONNREFUSED", "ECONNRESET",
                         "Connection timed out", "WebSocket connection"})) {
    return LmsDiagnostic::kServerUnreachable;
  }
  if (ContainsAny(text, {"Failed to authenticate", "Invalid client passkey", "Unauthorized"})) {
    return LmsDiagnostic::kAuthentication;
  }
  // Before the generic "not found" checks: `unload`'s "Model Not Found" box.
  if (ContainsAny(text, {"Cannot find a model with the identifier"})) {
    return LmsDiagnostic::kInstanceNotFound;
  }
  if (ContainsAny(text, {"No model found", "Cannot find model", "Cannot find a model matching",
                         "Model not found", "noModelMatchingQuery", "pathNotFound"})) {
    return LmsDiagnostic::kModelNotFound;
  }
  if (ContainsAny(text, {"don't have any models loaded"})) return LmsDiagnostic::kNothingLoaded;
  if (ContainsAny(text, {"error: unknown option", "error: unknown command",
                         "error: too many arguments", "error: missing required argument",
                         "error: option '"})) {
    return LmsDiagnostic::kUsage;
  }
  if (ContainsAny(text, {"cannot prompt", "User force closed the prompt", "not a TTY"})) {
    return LmsDiagnostic::kNeedsTerminal;
  }
  return LmsDiagnostic::kNone;
}

absl::Status StatusOfRun(absl::string_view command, int exit_code, int term_signal,
                         absl::string_view stderr_text, absl::string_view home) {
  const std::string said = OneLine(stderr_text);
  const std::string detail = said.empty() ? "" : absl::StrCat(": ", said);
  if (term_signal != 0) {
    return absl::UnavailableError(
        absl::StrCat("`", command, "` was killed by signal ", term_signal, detail));
  }
  LmsDiagnostic diagnostic = ClassifyDiagnostics(stderr_text);
  // The real path of a HOME that does not exist: "ENOENT: no such file or directory, lstat '/x'".
  if (diagnostic == LmsDiagnostic::kNone && !home.empty() &&
      absl::StrContains(stderr_text, absl::StrCat(", lstat '", home, "'"))) {
    diagnostic = LmsDiagnostic::kHomeUnusable;
  }
  if (diagnostic == LmsDiagnostic::kNone && exit_code == kLmsExitAuthentication) {
    diagnostic = LmsDiagnostic::kAuthentication;
  }
  switch (diagnostic) {
    case LmsDiagnostic::kServerUnreachable:
      return absl::UnavailableError(
          absl::StrCat("`", command, "` cannot reach LM Studio", detail));
    case LmsDiagnostic::kModelNotFound:
    case LmsDiagnostic::kInstanceNotFound:
    case LmsDiagnostic::kNothingLoaded:
      return absl::NotFoundError(absl::StrCat("`", command, "`", detail));
    case LmsDiagnostic::kAuthentication:
      return absl::UnauthenticatedError(absl::StrCat(
          "LM Studio rejected the authentication of `", command, "` (lms exit code ", exit_code,
          "): with --host, lms connects as an unprivileged \"lms-cli-remote-*\" client and "
          "ignores LM_API_TOKEN, so a host with \"Require Authentication\" on refuses it; turn "
          "that setting off for the cli driver, or use the sdk_ws or rest driver with "
          "lmstudio.api_token", detail));
    case LmsDiagnostic::kHomeUnusable:
      return absl::FailedPreconditionError(absl::StrCat(
          "`", command, "` could not start: lms records its home directory under $HOME (HOME=",
          home.empty() ? "<unset>" : home,
          ") at start-up and needs a writable, existing HOME; give lmgate's service one (e.g. "
          "Environment=HOME=/var/lib/lmgate)", detail));
    case LmsDiagnostic::kUsage:
      return absl::FailedPreconditionError(absl::StrCat(
          "this `lms` does not understand `", command, "` (an older LM Studio?)", detail));
    case LmsDiagnostic::kNeedsTerminal:
      return absl::FailedPreconditionError(
          absl::StrCat("`", command, "` wanted to prompt on a terminal", detail));
    case LmsDiagnostic::kNone:
      break;
  }
  if (exit_code == 0) return absl::OkStatus();
  return absl::UnknownError(
      absl::StrCat("`", command, "` failed with exit code ", exit_code, detail));
}

}  // namespace lmgate::backends::cli
