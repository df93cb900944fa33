// backends::RequestLog prefixes every message with the request id, and formats nothing for a
// level the logger drops.
#include "backends/log.h"

#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "spdlog/sinks/ostream_sink.h"

namespace lmgate::backends {
namespace {

struct CountsFormatting {
  int* count;
};

}  // namespace
}  // namespace lmgate::backends

template <>
struct fmt::formatter<lmgate::backends::CountsFormatting> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const lmgate::backends::CountsFormatting& c, Ctx& ctx) const {
    ++*c.count;
    return fmt::formatter<std::string>::format("x", ctx);
  }
};

namespace lmgate::backends {
namespace {

TEST(RequestLogTest, PrefixesTheRequestIdAndSkipsDroppedLevels) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("test", sink);
  logger.set_pattern("%l %v");
  logger.set_level(spdlog::level::info);
  const std::string id = "req-7";
  const RequestLog log(logger, id);
  log.info("loading {} through {}", "qwen", "REST v1");
  log.warn("plain");
  int formatted = 0;
  log.debug("dropped {}", CountsFormatting{&formatted});
  logger.flush();
  EXPECT_EQ(out.str(), "info [req-7] loading qwen through REST v1\nwarning [req-7] plain\n");
  EXPECT_EQ(formatted, 0);
}

}  // namespace
}  // namespace lmgate::backends
