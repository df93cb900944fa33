#include "common/cli_flags.h"

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lmgate::cli {
namespace {

constexpr size_t kHelpWidth = 72;

bool IsHelp(absl::string_view name) {
  return name == "help" || name == "helpfull" || name == "h" || name == "?";
}

}  // namespace

ParsedCommandLine ParseCommandLine(int argc, char** argv) {
  ParsedCommandLine out;
  auto fail = [&out](std::string message) {
    out.outcome = ParsedCommandLine::Outcome::kUsageError;
    out.error = std::move(message);
    return out;
  };
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    absl::string_view body = arg;
    if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
    const size_t eq = body.find('=');
    absl::string_view name = body.substr(0, eq);
    const bool has_value = eq != absl::string_view::npos;
    absl::string_view value = has_value ? body.substr(eq + 1) : absl::string_view();
    if (IsHelp(name)) {
      out.outcome = ParsedCommandLine::Outcome::kHelp;
      return out;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      absl::CommandLineFlag* positive = absl::FindCommandLineFlag(name.substr(2));
      if (positive != nullptr && positive->IsOfType<bool>()) {
        if (has_value) return fail(absl::StrCat("--", name, " takes no value"));
        flag = positive;
        negated = true;
      }
    }
    if (flag == nullptr || flag->IsRetired()) {
      return fail(absl::StrCat("unknown flag --", name, "; see --help"));
    }
    std::string v;
    if (flag->IsOfType<bool>()) {
      v = negated ? "false" : (has_value ? std::string(value) : "true");
    } else if (has_value) {
      v = std::string(value);
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return fail(absl::StrCat("--", name, " needs a value; see --help"));
    }
    std::string error;
    if (!flag->ParseFrom(v, &error)) {
      return fail(absl::StrCat("--", flag->Name(), "=", v, ": ", error));
    }
    out.specified.insert(std::string(flag->Name()));
  }
  return out;
}

std::string FlagsHelp(const std::vector<std::string>& flag_files) {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string file = flag->Filename();
    if (std::any_of(flag_files.begin(), flag_files.end(),
                    [&](const std::string& f) { return absl::EndsWith(file, f); })) {
      flags.push_back(flag);
    }
  }
  std::sort(flags.begin(), flags.end(),
            [](auto* a, auto* b) { return a->Name() < b->Name(); });
  std::string text = "Flags:\n";
  for (const auto* f : flags) {
    const bool is_string = f->IsOfType<std::string>();
    absl::StrAppend(&text, "  --", f->Name(), " (default ", is_string ? "\"" : "",
                    f->DefaultValue(), is_string ? "\"" : "", ")\n");
    // The help text, word-wrapped and indented.
    std::string line;
    for (absl::string_view word : absl::StrSplit(f->Help(), ' ', absl::SkipEmpty())) {
      if (!line.empty() && line.size() + 1 + word.size() > kHelpWidth) {
        absl::StrAppend(&text, "      ", line, "\n");
        line.clear();
      }
      absl::StrAppend(&line, line.empty() ? "" : " ", word);
    }
    if (!line.empty()) absl::StrAppend(&text, "      ", line, "\n");
  }
  return text;
}

}  // namespace lmgate::cli
