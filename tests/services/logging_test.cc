// log_format applies to every line: the default logger, a per-component logger cloned from it
// (as backends/*/log.h do, before or after setup) and the structured records (access, lifecycle).
#include "services/logging.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace lmgate::services {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  // One default logger for the binary: RecordLogger() keeps the clones it made.
  void SetUp() override {
    static std::ostringstream* out = [] {
      auto* o = new std::ostringstream;
      auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*o);
      spdlog::set_default_logger(std::make_shared<spdlog::logger>("", sink));
      return o;
    }();
    out_ = out;
    out_->str("");
    early_ = spdlog::default_logger()->clone("http");  // cloned before setup, like HttpLog()
  }
  void TearDown() override { SetLogFormat(LogFormat::kJson); }

  void LogEveryKind() {
    spdlog::info("listening on {}", "127.0.0.1:50051");
    early_->warn("[req-1] upstream said {}", 503);
    spdlog::default_logger()->clone("sdk")->info("connected");
    LogRecord(RecordLogger("access"), spdlog::level::info, "access",
              {{"request_id", "r1"}, {"tenant", "ops"}, {"method", "LoadModel"},
               {"error", "tenant ops lacks = the role"}});
    LogRecord(RecordLogger("lifecycle"), spdlog::level::info, "model event",
              {{"event", "evicted"}, {"reason", "evicted to make room for google/gemma-3-1b"}});
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> v = absl::StrSplit(out_->str(), '\n', absl::SkipEmpty());
    return v;
  }

  std::ostringstream* out_ = nullptr;
  std::shared_ptr<spdlog::logger> early_;
};

TEST_F(LoggingTest, JsonMakesEveryLineOneJsonObject) {
  SetupLogging(LogFormat::kJson);
  LogEveryKind();
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 5u) << out_->str();
  for (const auto& l : lines) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l;
  }
  auto http = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(http["logger"], "http");
  EXPECT_EQ(http["level"], "warning");
  EXPECT_EQ(http["msg"], "[req-1] upstream said 503");
  EXPECT_EQ(nlohmann::json::parse(lines[3])["tenant"], "ops");  // the record itself
  EXPECT_EQ(nlohmann::json::parse(lines[4])["event"], "evicted");
}

TEST_F(LoggingTest, TextHasNoJsonShapedRecords) {
  SetupLogging(LogFormat::kText);
  LogEveryKind();
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 5u) << out_->str();
  for (const auto& l : lines) {
    EXPECT_EQ(l.find('{'), std::string::npos) << l;
    EXPECT_EQ(l.front(), '[') << l;  // spdlog's pattern: [time] [logger] [level] message
  }
  // Keys in name order (nlohmann::json's); values with spaces, quotes or '=' quoted.
  EXPECT_NE(lines[3].find("[access] [info] access error=\"tenant ops lacks = the role\" "
                          "method=LoadModel request_id=r1 tenant=ops"),
            std::string::npos)
      << lines[3];
  EXPECT_NE(lines[4].find("event=evicted reason=\"evicted to make room for google/gemma-3-1b\""),
            std::string::npos)
      << lines[4];
}

}  // namespace
}  // namespace lmgate::services
