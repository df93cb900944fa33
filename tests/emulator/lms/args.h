// Command-line parsing of the `lms` stand-in, with the real CLI's commander.js behaviour for the
// commands it implements: options anywhere after the command, `--name=value`, `-c 4096` / `-c4096`,
// combined short flags, `--` ending options, the same option sets (including the hidden --host,
// --port, --log-level, --quiet, --verbose), the same value checks and the same error lines
// ("error: unknown option '--x'", exit code 1), and `-v` / `--version` anywhere in argv (even
// after `--`) printing the version with exit code 0.
//
// Pure, thread-safe.
#ifndef LMGATE_TESTS_EMULATOR_LMS_ARGS_H_
#define LMGATE_TESTS_EMULATOR_LMS_ARGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lmgate::lms {

// A parsed command line of a command to run.
struct CommandLine {
  // "ls", "ps", "load", "unload", "status" or "server status".
  std::string command;
  std::vector<std::string> positionals;
  // Long option name (without "--") → value ("" for flags). The last occurrence wins.
  std::map<std::string, std::string> options;

  bool Has(const std::string& name) const { return options.count(name) > 0; }
  std::string Get(const std::string& name) const {
    auto it = options.find(name);
    return it == options.end() ? "" : it->second;
  }
};

struct ParseOutcome {
  std::optional<CommandLine> command;  // set: run it
  // Otherwise: text to print (help on stdout when exit_code is 0, else an error on stderr).
  std::string text;
  int exit_code = 0;
};

// `args` is argv[1..].
ParseOutcome ParseCommandLine(const std::vector<std::string>& args);

// JavaScript's `+str` (Number(str)): NaN when `str` is not a number.
double JsNumber(const std::string& str);

}  // namespace lmgate::lms

#endif  // LMGATE_TESTS_EMULATOR_LMS_ARGS_H_
