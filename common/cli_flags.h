// Command-line parsing for lmgate's binaries (lmgate, lmgatectl) over Abseil flags, with the
// exit statuses their --help promises: a usage error (unknown flag, bad value, missing value) is
// reported, not fatal, so the caller exits 2; --help prints this program's flags and their defaults
// (Abseil's own --help lists none of them when the binary's name is not its source file's, and
// exits 1).
//
// Syntax, as Abseil's: --name=value, --name value, -name=value; booleans --name, --noname,
// --name=true|false; "--" ends the flags; flags and positional arguments may interleave.
// Thread-compatible: call once, from main(), before starting threads.
#ifndef LMGATE_COMMON_CLI_FLAGS_H_
#define LMGATE_COMMON_CLI_FLAGS_H_

#include <set>
#include <string>
#include <vector>

namespace lmgate::cli {

struct ParsedCommandLine {
  enum class Outcome { kOk, kHelp, kUsageError };
  Outcome outcome = Outcome::kOk;
  // kUsageError: what was wrong, e.g. `unknown flag --bogus`.
  std::string error;
  // Arguments that are not flags, in order (argv[0] excluded).
  std::vector<std::string> positional;
  // Names of the flags given on the command line (a --noname counts as "name").
  std::set<std::string> specified;
};

// Parses argv into the registered Abseil flags.
ParsedCommandLine ParseCommandLine(int argc, char** argv);

// "Flags:" then one entry per flag defined in a source file whose path ends with one of
// `flag_files` (e.g. "services/main.cc"), sorted by name: `  --name (default "value")`, then
// the flag's help text, word-wrapped.
std::string FlagsHelp(const std::vector<std::string>& flag_files);

}  // namespace lmgate::cli

#endif  // LMGATE_COMMON_CLI_FLAGS_H_
