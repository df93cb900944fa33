// What LM Studio's `lms` CLI prints, turned into lmgate's types (shared/reference/
// lmstudio-protocol.md §5): `ls --json` and `ps --json` (the SDK's ModelInfo / ModelInstanceInfo
// objects, §1.4), the identifier in `load`'s success line, and the meaning of its diagnostics.
//
// Pure functions over text: no I/O, no state, thread-safe. Every function accepts arbitrary bytes
// and never throws or crashes (the input comes from another program and is fuzzed).
#ifndef LMGATE_BACKENDS_CLI_LMS_OUTPUT_H_
#define LMGATE_BACKENDS_CLI_LMS_OUTPUT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/types.h"

namespace lmgate::backends::cli {

// One element of `lms ls --json`: the model, and its `path` (what `lms load --exact` matches).
struct LsModel {
  ModelInfo info;
  std::string path;
};

// `lms ls --json` stdout: `[ModelInfo...]`, or the `--variants` shape `[{model, variants}]`.
// Elements without a modelKey are skipped. INTERNAL, quoting the text, when stdout holds no JSON
// array (a line holding the array after other output is accepted).
absl::StatusOr<std::vector<LsModel>> ParseLsJson(absl::string_view stdout_text);

// `lms ps --json` stdout: `[ModelInstanceInfo (without instanceReference) + status, queued,
// parallel]`. `parallel` (null for embedding models) becomes parallel_slots (0 = unknown).
// Elements without an identifier are skipped. INTERNAL as above.
absl::StatusOr<std::vector<InstanceInfo>> ParsePsJson(absl::string_view stdout_text);

// The identifier from `lms load`'s closing line `To use the model in the API/SDK, use the
// identifier "X".` (printed on stderr), or nullopt.
std::optional<std::string> ParseLoadedIdentifier(absl::string_view output);

// What `lms` said went wrong, from its stderr. Needed besides the exit code because the real CLI
// exits 0 after some failures (`lms unload <unknown identifier>` prints "Model Not Found" and
// exits 0).
enum class LmsDiagnostic {
  kNone,
  kServerUnreachable,  // "The server does not appear to be running at ..." and the like
  kModelNotFound,      // `load`: no downloaded model matches
  kInstanceNotFound,   // `unload`: no loaded instance has that identifier
  kNothingLoaded,      // `unload` without identifier and nothing loaded
  kAuthentication,     // the host rejected the client
  kUsage,              // the CLI did not understand the command line (too old?)
  kNeedsTerminal,      // the CLI wanted to prompt (interactive selection)
  kHomeUnusable,       // it could not record its home directory under $HOME at start-up
};
LmsDiagnostic ClassifyDiagnostics(absl::string_view stderr_text);

// The status of a finished `lms <command>` run: OK when it exited 0 without a recognised error
// message; else a code by diagnostic — UNAVAILABLE (host unreachable, or the CLI killed by a
// signal), NOT_FOUND, UNAUTHENTICATED (an authentication message, or exit code 13, with what to
// do about it), FAILED_PRECONDITION (usage, needs a terminal, or an unusable HOME — named as
// `home`, the child's $HOME), and UNKNOWN for anything else — with `command` and the CLI's own
// message.
absl::Status StatusOfRun(absl::string_view command, int exit_code, int term_signal,
                         absl::string_view stderr_text, absl::string_view home = "");

// The real CLI's exit code when the host rejects its authentication: the SDK logs the rejection,
// the command's promise never settles, and Node exits with 13 ("unsettled top-level await").
inline constexpr int kLmsExitAuthentication = 13;

// `text` without ANSI escape sequences (colours), for CLIs run with colours forced on.
std::string StripAnsi(absl::string_view text);

}  // namespace lmgate::backends::cli

#endif  // LMGATE_BACKENDS_CLI_LMS_OUTPUT_H_
