#include "backends/http/url.h"

#include <gtest/gtest.h>

namespace lmgate::backends::http {
namespace {

TEST(ParseHostUrlTest, AcceptsEveryFormUsersPaste) {
  for (const char* in : {"http://127.0.0.1:1234", "http://127.0.0.1:1234/", "http://127.0.0.1:1234/v1",
                         "http://127.0.0.1:1234/v1/", "http://127.0.0.1:1234/api/v0",
                         "http://127.0.0.1:1234/api/v1/", "127.0.0.1:1234", "ws://127.0.0.1:1234",
                         "  http://127.0.0.1:1234  "}) {
    auto url = ParseHostUrl(in);
    ASSERT_TRUE(url.ok()) << in << ": " << url.status();
    EXPECT_EQ(url->HttpBase(), "http://127.0.0.1:1234") << in;
    EXPECT_EQ(url->WsBase(), "ws://127.0.0.1:1234") << in;
    EXPECT_EQ(url->HostPort(), "127.0.0.1:1234") << in;
  }
}

TEST(ParseHostUrlTest, DefaultsAndPrefixes) {
  EXPECT_EQ(ParseHostUrl("localhost")->port, 1234);
  EXPECT_EQ(ParseHostUrl("http://lm.example")->port, 80);
  EXPECT_EQ(ParseHostUrl("https://lm.example/v1")->WsBase(), "wss://lm.example:443");
  EXPECT_EQ(ParseHostUrl("http://proxy:8080/lmstudio/api/v0")->HttpBase(),
            "http://proxy:8080/lmstudio");
  EXPECT_EQ(ParseHostUrl("http://[::1]:1234/")->HostPort(), "[::1]:1234");
}

TEST(ParseHostUrlTest, RejectsWithReason) {
  for (const char* in : {"", "ftp://h:1", "http://h:0", "http://h:99999", "http://h:1/?x=1",
                         "http://u:p@h:1", "http://:1234", "http://[::1"}) {
    auto url = ParseHostUrl(in);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << in;
  }
}

}  // namespace
}  // namespace lmgate::backends::http
