// Fuzz target: the parsers of what the `lms` CLI prints (backends/cli/lms_output.h) — `ls --json`,
// `ps --json`, `load`'s identifier line, the diagnostics on stderr and the resulting status.
//
// Input: one control byte, then the CLI's output. Every parser runs on that output (the same
// bytes may be stdout or stderr, so an array found for `ls` is also tried as `ps`). The control
// byte gives the run's exit code (bits 0-1: 0, 1, 2, 255) and whether a signal killed it (bit 2).
// Seeds start with '0' (exit 0) or '1' (exit 1).
//
// Besides "no crash, no throw, no sanitizer report", checks what the header promises:
//   - ls and ps agree on whether stdout holds a JSON array; failures are INTERNAL, name the
//     command and quote at most a bounded, single-line excerpt;
//   - every ls element has a model key, every ps element an identifier, parallel_slots >= 0,
//     and a ttl, when set, is positive;
//   - a parsed identifier is non-empty, on one line, without escapes, and round-trips through
//     the line `lms load` prints;
//   - StripAnsi never grows the text, leaves no ESC and is idempotent;
//   - StatusOfRun is OK exactly when the run exited 0, no signal, no recognised diagnostic, and
//     otherwise has the code of its diagnostic and a one-line message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "backends/cli/lms_output.h"

namespace cli = lmgate::backends::cli;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "cli_fuzzer: invariant violated: %s\n", what);
  std::abort();
}

// A failed parse: INTERNAL, naming the command, one line, bounded (the excerpt is <= 203 bytes).
void CheckParseError(const absl::Status& s, absl::string_view command) {
  Check(s.code() == absl::StatusCode::kInternal, "parse error is not INTERNAL");
  Check(absl::StrContains(s.message(), command), "parse error does not name the command");
  Check(!absl::StrContains(s.message(), "\n"), "parse error message spans lines");
  Check(s.message().size() <= 300, "parse error message is unbounded");
}

absl::StatusCode CodeOf(cli::LmsDiagnostic d) {
  switch (d) {
    case cli::LmsDiagnostic::kServerUnreachable:
      return absl::StatusCode::kUnavailable;
    case cli::LmsDiagnostic::kModelNotFound:
    case cli::LmsDiagnostic::kInstanceNotFound:
    case cli::LmsDiagnostic::kNothingLoaded:
      return absl::StatusCode::kNotFound;
    case cli::LmsDiagnostic::kAuthentication:
      return absl::StatusCode::kUnauthenticated;
    case cli::LmsDiagnostic::kUsage:
    case cli::LmsDiagnostic::kNeedsTerminal:
    case cli::LmsDiagnostic::kHomeUnusable:
      return absl::StatusCode::kFailedPrecondition;
    case cli::LmsDiagnostic::kNone:
      break;
  }
  return absl::StatusCode::kOk;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  static constexpr int kExitCodes[] = {0, 1, 13, 255};  // 13: lms's authentication failure
  const int exit_code = kExitCodes[control & 3];
  const int term_signal = (control & 4) != 0 ? 9 : 0;

  // ls / ps --json.
  auto ls = cli::ParseLsJson(text);
  auto ps = cli::ParsePsJson(text);
  Check(ls.ok() == ps.ok(), "ls and ps disagree on whether stdout holds a JSON array");
  if (ls.ok()) {
    for (const cli::LsModel& m : *ls) Check(!m.info.key.empty(), "ls element without model key");
  } else {
    CheckParseError(ls.status(), "lms ls --json");
  }
  if (ps.ok()) {
    for (const lmgate::backends::InstanceInfo& i : *ps) {
      Check(!i.identifier.empty(), "ps element without identifier");
      Check(i.parallel_slots >= 0, "negative parallel_slots");
      Check(!i.ttl.has_value() || *i.ttl > absl::ZeroDuration(), "non-positive ttl");
    }
  } else {
    CheckParseError(ps.status(), "lms ps --json");
  }

  // StripAnsi.
  const std::string stripped = cli::StripAnsi(text);
  Check(stripped.size() <= text.size(), "StripAnsi grew the text");
  Check(stripped.find('\x1b') == std::string::npos, "StripAnsi left an ESC");
  Check(cli::StripAnsi(stripped) == stripped, "StripAnsi is not idempotent");

  // `lms load`'s identifier.
  if (std::optional<std::string> id = cli::ParseLoadedIdentifier(text); id.has_value()) {
    Check(!id->empty(), "empty identifier");
    Check(id->find('\n') == std::string::npos, "identifier spans lines");
    Check(id->find('\x1b') == std::string::npos, "identifier holds an ESC");
    if (!absl::StrContains(*id, "use the identifier \"")) {
      const std::string line =
          absl::StrCat("To use the model in the API/SDK, use the identifier \"", *id, "\".\n");
      Check(cli::ParseLoadedIdentifier(line) == id, "identifier does not round-trip");
    }
  }

  // Diagnostics and the status of the run.
  cli::LmsDiagnostic diagnostic = cli::ClassifyDiagnostics(text);
  Check(cli::ClassifyDiagnostics(stripped) == diagnostic, "colours change the diagnostic");
  // The child's HOME: a HOME that does not exist shows as "lstat '<HOME>'" in lms's error.
  constexpr absl::string_view kHome = "/home/fuzz";
  const absl::Status status = cli::StatusOfRun("lms fuzz", exit_code, term_signal, text, kHome);
  if (diagnostic == cli::LmsDiagnostic::kNone &&
      absl::StrContains(text, absl::StrCat(", lstat '", kHome, "'"))) {
    diagnostic = cli::LmsDiagnostic::kHomeUnusable;
  }
  if (diagnostic == cli::LmsDiagnostic::kNone && exit_code == 13) {
    diagnostic = cli::LmsDiagnostic::kAuthentication;
  }
  Check(!absl::StrContains(status.message(), "\n"), "status message spans lines");
  if (term_signal != 0) {
    Check(status.code() == absl::StatusCode::kUnavailable, "killed run is not UNAVAILABLE");
  } else if (diagnostic != cli::LmsDiagnostic::kNone) {
    Check(status.code() == CodeOf(diagnostic), "status code does not match the diagnostic");
  } else {
    Check(status.ok() == (exit_code == 0), "status does not follow the exit code");
    if (!status.ok()) Check(status.code() == absl::StatusCode::kUnknown, "failure is not UNKNOWN");
  }
  return 0;
}
