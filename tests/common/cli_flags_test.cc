#include "common/cli_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, name, "fallback", "A string flag.");
ABSL_FLAG(int, count, 3, "An int flag whose help is long enough to be wrapped over more than one line of the help text.");
ABSL_FLAG(bool, verbose, false, "A bool flag.");

namespace lmgate::cli {
namespace {

using Outcome = ParsedCommandLine::Outcome;

ParsedCommandLine Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

class CliFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_name, "fallback");
    absl::SetFlag(&FLAGS_count, 3);
    absl::SetFlag(&FLAGS_verbose, false);
  }
};

TEST_F(CliFlagsTest, ParsesEveryFormAndKeepsPositionalsInOrder) {
  auto p = Parse({"first", "--name=a b", "--count", "7", "-verbose", "second", "--", "--count=9"});
  ASSERT_EQ(p.outcome, Outcome::kOk) << p.error;
  EXPECT_EQ(absl::GetFlag(FLAGS_name), "a b");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_verbose));
  EXPECT_EQ(p.positional, (std::vector<std::string>{"first", "second", "--count=9"}));
  EXPECT_EQ(p.specified, (std::set<std::string>{"name", "count", "verbose"}));
}

TEST_F(CliFlagsTest, NegatedBoolCountsAsSpecified) {
  absl::SetFlag(&FLAGS_verbose, true);
  auto p = Parse({"--noverbose"});
  ASSERT_EQ(p.outcome, Outcome::kOk) << p.error;
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
  EXPECT_EQ(p.specified.count("verbose"), 1u);
  EXPECT_EQ(Parse({"--verbose=false"}).outcome, Outcome::kOk);
  EXPECT_FALSE(absl::GetFlag(FLAGS_verbose));
}

TEST_F(CliFlagsTest, UsageErrorsAreReportedNotFatal) {
  auto unknown = Parse({"--bogus"});
  EXPECT_EQ(unknown.outcome, Outcome::kUsageError);
  EXPECT_EQ(unknown.error, "unknown flag --bogus; see --help");
  auto bad = Parse({"--count=abc"});
  EXPECT_EQ(bad.outcome, Outcome::kUsageError);
  EXPECT_NE(bad.error.find("--count=abc"), std::string::npos) << bad.error;
  auto missing = Parse({"--name"});
  EXPECT_EQ(missing.outcome, Outcome::kUsageError);
  EXPECT_EQ(missing.error, "--name needs a value; see --help");
  EXPECT_EQ(Parse({"--noverbose=1"}).outcome, Outcome::kUsageError);
  EXPECT_EQ(Parse({"--nocount"}).outcome, Outcome::kUsageError);  // not a bool
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
}

TEST_F(CliFlagsTest, HelpWinsWhereverItIs) {
  EXPECT_EQ(Parse({"--help"}).outcome, Outcome::kHelp);
  EXPECT_EQ(Parse({"models", "-h"}).outcome, Outcome::kHelp);
  EXPECT_EQ(Parse({"--helpfull"}).outcome, Outcome::kHelp);
}

TEST_F(CliFlagsTest, HelpListsThisFilesFlagsWithDefaults) {
  const std::string help = FlagsHelp({"tests/common/cli_flags_test.cc"});
  EXPECT_EQ(help.rfind("Flags:\n", 0), 0u) << help;
  EXPECT_NE(help.find("  --count (default 3)\n      An int flag"), std::string::npos) << help;
  EXPECT_NE(help.find("  --name (default \"fallback\")\n      A string flag.\n"), std::string::npos)
      << help;
  EXPECT_NE(help.find("  --verbose (default false)\n"), std::string::npos) << help;
  EXPECT_LT(help.find("--count"), help.find("--name"));  // sorted
  for (absl::string_view line : absl::StrSplit(help, '\n')) EXPECT_LE(line.size(), 80u) << line;
  EXPECT_EQ(FlagsHelp({"no/such/file.cc"}), "Flags:\n");
}

}  // namespace
}  // namespace lmgate::cli
