#include "tests/emulator/lms/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lmgate::lms {
namespace {

// "" when `value` is acceptable, else commander's reason (InvalidArgumentError text).
using ValueCheck = std::function<std::string(const std::string&)>;

struct OptionSpec {
  std::string flags;  // as commander prints it: "-c, --context-length <length>"
  std::string long_name;
  char short_name = 0;
  bool takes_value = false;
  ValueCheck check;
};

struct CommandSpec {
  std::string name;  // as in messages: "status" for `server status`
  size_t max_positionals = 0;
  std::vector<OptionSpec> options;
  std::string usage;
};

// createRefinedNumberParser (types/refinedNumber.ts).
ValueCheck RefinedNumber(bool integer, std::optional<double> min, std::optional<double> max) {
  return [=](const std::string& s) -> std::string {
    const double n = JsNumber(s);
    if (std::isnan(n)) return "Not a number";
    if (!std::isfinite(n)) return "Not a finite number";
    if (integer && std::floor(n) != n) return "Not an integer";
    if (min && n < *min) return absl::StrCat("Number out of range, must be at least ", *min);
    if (max && n > *max) return absl::StrCat("Number out of range, must be at most ", *max);
    return "";
  };
}

// gpuOptionParser (subcommands/load.ts).
std::string CheckGpu(const std::string& s) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
  if (v == "off" || v == "max") return "";
  const double n = JsNumber(v);
  if (std::isnan(n)) return "Not a number";
  if (n < 0 || n > 1) return "Number out of range, must be between 0 and 1";
  return "";
}

std::string CheckLogLevel(const std::string& s) {
  for (const char* level : {"debug", "info", "warn", "error", "none"}) {
    if (s == level) return "";
  }
  return "Allowed choices are debug, info, warn, error, none.";
}

OptionSpec Flag(std::string long_name, char short_name = 0) {
  std::string flags = short_name ? absl::StrCat("-", std::string(1, short_name), ", --", long_name)
                                 : absl::StrCat("--", long_name);
  return {flags, long_name, short_name, false, nullptr};
}

OptionSpec Value(std::string long_name, std::string value_name, ValueCheck check = nullptr,
                 char short_name = 0) {
  OptionSpec o = Flag(long_name, short_name);
  o.flags = absl::StrCat(o.flags, " <", value_name, ">");
  o.takes_value = true;
  o.check = std::move(check);
  return o;
}

std::vector<OptionSpec> ClientOptions() {
  return {Value("host", "host"), Value("port", "port", RefinedNumber(true, 0, 65535))};
}

std::vector<OptionSpec> LogOptions() {
  return {Value("log-level", "level", CheckLogLevel), Flag("quiet"), Flag("verbose")};
}

CommandSpec Spec(std::string name, size_t max_positionals, std::vector<OptionSpec> own,
                 bool client, std::string usage) {
  CommandSpec c{std::move(name), max_positionals, std::move(own), std::move(usage)};
  if (client) {
    for (OptionSpec& o : ClientOptions()) c.options.push_back(std::move(o));
  }
  for (OptionSpec& o : LogOptions()) c.options.push_back(std::move(o));
  return c;
}

std::optional<CommandSpec> FindCommand(const std::string& path) {
  const auto positive_int = RefinedNumber(true, 1, std::nullopt);
  if (path == "ls") {
    return Spec("ls", 1,
                {Flag("llm"), Flag("embedding"), Flag("detailed"), Flag("variants"), Flag("json")},
                true, "lms ls [options] [modelKey]\n\nList the models available on disk");
  }
  if (path == "ps") {
    return Spec("ps", 0, {Flag("json")}, true,
                "lms ps [options]\n\nList the models currently loaded in memory");
  }
  if (path == "load") {
    return Spec("load", 1,
                {Value("gpu", "offload-ratio", CheckGpu),
                 Value("context-length", "length", positive_int, 'c'),
                 Value("parallel", "count", positive_int), Value("ttl", "seconds", positive_int),
                 Flag("exact"), Flag("local"), Value("identifier", "identifier"),
                 Flag("estimate-only"), Flag("yes", 'y')},
                true, "lms load [options] [model-key]\n\nLoad a model");
  }
  if (path == "unload") {
    return Spec("unload", 1, {Flag("all", 'a')}, true,
                "lms unload [options] [identifier]\n\nUnload a model");
  }
  if (path == "status") {
    return Spec("status", 0, {}, true, "lms status [options]\n\nPrints the status of LM Studio");
  }
  // `lms server status` takes no --host/--port: it reads the last server settings from the
  // LM Studio home directory.
  if (path == "server status") {
    return Spec("status", 0, {Flag("json")}, false,
                "lms server status [options]\n\nDisplays the status of the local server");
  }
  return std::nullopt;
}

constexpr char kVersion[] = "0.0.47 (lmgate lms stand-in)";

constexpr char kProgramUsage[] =
    "Usage: lms [options] [command]\n"
    "\n"
    "LM Studio CLI stand-in (lmgate tests): ls, ps, load, unload, server status, status.\n"
    "\n"
    "Commands:\n"
    "  load [model-key]   Load a model\n"
    "  unload [identifier]  Unload a model\n"
    "  ls [modelKey]      List the models available on disk\n"
    "  ps                 List the models currently loaded in memory\n"
    "  server             Commands for managing the local server\n"
    "  help [command]     display help for command\n";

constexpr char kServerUsage[] =
    "Usage: lms server [options] [command]\n"
    "\n"
    "Commands for managing the local server\n"
    "\n"
    "Commands:\n"
    "  status [options]  Displays the status of the local server\n";

ParseOutcome Error(std::string message) {
  ParseOutcome out;
  out.text = absl::StrCat("error: ", message, "\n");
  out.exit_code = 1;
  return out;
}

ParseOutcome Help(std::string text, int exit_code = 0) {
  ParseOutcome out;
  out.text = std::move(text);
  out.exit_code = exit_code;
  return out;
}

const OptionSpec* FindLong(const CommandSpec& c, const std::string& name) {
  for (const OptionSpec& o : c.options) {
    if (o.long_name == name) return &o;
  }
  return nullptr;
}

const OptionSpec* FindShort(const CommandSpec& c, char name) {
  for (const OptionSpec& o : c.options) {
    if (o.short_name == name) return &o;
  }
  return nullptr;
}

}  // namespace

double JsNumber(const std::string& str) {
  const std::string s(absl::StripAsciiWhitespace(str));
  if (s.empty()) return 0;
  if (s == "Infinity" || s == "+Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  // strtod also reads "inf", "nan" and hex floats, which JavaScript does not.
  for (char c : s) {
    if (!(absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' ||
          c == 'E' || c == '+' || c == '-')) {
      return std::numeric_limits<double>::quiet_NaN();
    }
  }
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::numeric_limits<double>::quiet_NaN();
  return v;
}

ParseOutcome ParseCommandLine(const std::vector<std::string>& args) {
  // Like the real CLI, `-v` / `--version` anywhere in argv — after a command, as an option's
  // value, even after `--` — prints the version and exits 0 without running anything, so
  // `lms unload -- -v` "succeeds" without unloading.
  for (const std::string& arg : args) {
    if (arg == "-v" || arg == "--version") return Help(absl::StrCat(kVersion, "\n"));
  }
  size_t i = 0;
  // Program-level options: help (and the version, above).
  while (i < args.size() && absl::StartsWith(args[i], "-")) {
    if (args[i] == "-h" || args[i] == "--help") return Help(kProgramUsage);
    return Error(absl::StrCat("unknown option '", args[i], "'"));
  }
  if (i == args.size()) return Help(kProgramUsage, 1);
  std::string path = args[i++];
  if (path == "help") return Help(kProgramUsage);
  if (path == "server") {
    if (i == args.size()) return Help(kServerUsage, 1);
    if (args[i] == "-h" || args[i] == "--help") return Help(kServerUsage);
    if (absl::StartsWith(args[i], "-")) return Error(absl::StrCat("unknown option '", args[i], "'"));
    const std::string sub = args[i++];
    if (sub == "start" || sub == "stop") {
      return Error(absl::StrCat("the lms stand-in does not implement 'server ", sub, "'"));
    }
    path = absl::StrCat("server ", sub);
    if (!FindCommand(path)) return Error(absl::StrCat("unknown command '", sub, "'"));
  }
  std::optional<CommandSpec> spec = FindCommand(path);
  if (!spec) return Error(absl::StrCat("unknown command '", path, "'"));

  CommandLine line;
  line.command = path;
  auto set_value = [&](const OptionSpec& o, const std::string& value) -> std::optional<ParseOutcome> {
    if (o.check) {
      std::string why = o.check(value);
      if (!why.empty()) {
        return Error(absl::StrCat("option '", o.flags, "' argument '", value, "' is invalid. ", why));
      }
    }
    line.options[o.long_name] = value;
    return std::nullopt;
  };
  bool options_ended = false;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg == "-" || !absl::StartsWith(arg, "-")) {
      line.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") return Help(absl::StrCat("Usage: ", spec->usage, "\n"));
    if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const OptionSpec* o = FindLong(*spec, name);
      if (o == nullptr || (!o->takes_value && eq != std::string::npos)) {
        return Error(absl::StrCat("unknown option '", arg, "'"));
      }
      if (!o->takes_value) {
        line.options[o->long_name] = "";
        continue;
      }
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];  // a required value is taken even when it starts with '-'
      } else {
        return Error(absl::StrCat("option '", o->flags, "' argument missing"));
      }
      if (auto failed = set_value(*o, value)) return *failed;
      continue;
    }
    // Short options: "-y", "-ya" (combined flags), "-c 4096", "-c4096".
    for (size_t k = 1; k < arg.size(); ++k) {
      const OptionSpec* o = FindShort(*spec, arg[k]);
      if (o == nullptr) {
        return Error(absl::StrCat("unknown option '", k == 1 ? arg : absl::StrCat("-", arg.substr(k, 1)), "'"));
      }
      if (!o->takes_value) {
        line.options[o->long_name] = "";
        continue;
      }
      std::string value;
      if (k + 1 < arg.size()) {
        value = arg.substr(k + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Error(absl::StrCat("option '", o->flags, "' argument missing"));
      }
      if (auto failed = set_value(*o, value)) return *failed;
      break;
    }
  }
  if (line.positionals.size() > spec->max_positionals) {
    return Error(absl::StrCat("too many arguments for '", spec->name, "'. Expected ",
                              spec->max_positionals, " argument",
                              spec->max_positionals == 1 ? "" : "s", " but got ",
                              line.positionals.size(), "."));
  }
  int log_flags = line.Has("log-level") + line.Has("quiet") + line.Has("verbose");
  if (log_flags > 1) {
    ParseOutcome out;
    out.text = "Only one of --logLevel, --verbose, or --quiet can be specified.\n";
    out.exit_code = 1;
    return out;
  }
  ParseOutcome out;
  out.command = std::move(line);
  return out;
}

}  // namespace lmgate::lms
