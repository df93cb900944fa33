#include "services/config.h"

#include <gtest/gtest.h>

namespace lmgate::services {
namespace {

const std::vector<std::string> kKnown = {"sdk_ws", "rest", "openai", "cli"};

TEST(ConfigTest, DefaultsAreValid) {
  auto c = ParseConfig("{}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:50051");
  EXPECT_EQ(c->host.base_url, "http://127.0.0.1:1234");
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
}

TEST(ConfigTest, ReadsEveryKind) {
  auto c = ParseConfig(R"({
    // comments are allowed
    "listen": "127.0.0.1:6000",
    "lmstudio": {"url": "http://lm:1234/v1", "max_retries": 3, "load_timeout_seconds": 120},
    "drivers": ["rest", "openai"],
    "default_model": "qwen/qwen3-4b",
    "default_ttl_seconds": 600,
    "max_loaded_models": 2,
    "models": {"qwen/qwen3-4b": {"context_length": 8192, "keep_loaded": true, "ttl_seconds": 30,
                                 "sampling": {"temperature": 0.2, "stop": ["\n\n"]}}}
  })");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:6000");
  EXPECT_EQ(c->host.max_retries, 3);
  EXPECT_EQ(c->host.load_timeout, absl::Seconds(120));
  EXPECT_EQ(c->drivers.size(), 2u);
  EXPECT_EQ(c->gateway.default_model, "qwen/qwen3-4b");
  EXPECT_EQ(c->gateway.lifecycle.default_ttl, absl::Seconds(600));
  EXPECT_EQ(c->gateway.lifecycle.max_loaded_models, 2);
  const auto& p = c->gateway.lifecycle.models.at("qwen/qwen3-4b");
  EXPECT_EQ(p.load.context_length, 8192);
  EXPECT_TRUE(p.keep_loaded);
  EXPECT_EQ(p.ttl, absl::Seconds(30));
  EXPECT_EQ(p.sampling.temperature, 0.2);
  EXPECT_EQ(p.sampling.stop.size(), 1u);
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
}

TEST(ConfigTest, TyposAndBadValuesAreNamed) {
  struct Case {
    const char* json;
    const char* mentions;
  } cases[] = {
      {R"({"lisen": "x"})", "lisen"},
      {R"({"lmstudio": {"ur": "x"}})", "lmstudio.ur"},
      {R"({"worker_threads": "many"})", "worker_threads"},
      {R"({"models": {"a/b": {"context_lenght": 4}}})", "models.a/b.context_lenght"},
      {R"({"models": {"a/b": {"gpu_offload_ratio": 3}}})", "gpu_offload_ratio"},
      {"{not json", "JSON"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseConfig(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos) << parsed.status();
  }
}

// Integer fields take JSON integers, or numbers with an integral value, in the field's range:
// never a silent truncation (1.5 -> 1), wrap (2^32 + 8192 -> 8192) or out-of-range float cast
// (1e30: undefined behaviour, found by the config fuzzer).
TEST(ConfigTest, IntegerFieldsAreIntegersInRange) {
  for (const char* bad : {
           R"({"max_loaded_models": 1e30})",
           R"({"max_loaded_models": -1e30})",
           R"({"max_loaded_models": 1.5})",
           R"({"max_loaded_models": 4294967298})",
           R"({"max_loaded_models": 18446744073709551615})",
           R"({"max_loaded_models": 2147483648.0})",
           R"({"max_loaded_bytes": 9223372036854775808.0})",
           R"({"max_loaded_bytes": 18446744073709551615})",
           R"({"models": {"a/b": {"context_length": 4294975488}}})",
           R"({"models": {"a/b": {"sampling": {"seed": 1e19}}}})",
           R"({"worker_threads": true})",
       }) {
    auto parsed = ParseConfig(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("integer"), std::string::npos) << parsed.status();
  }
  auto c = ParseConfig(R"({"max_loaded_models": 2e0, "max_loaded_bytes": 8e9,
                           "models": {"a/b": {"context_length": 8192.0,
                                              "sampling": {"seed": -9223372036854775808}}}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gateway.lifecycle.max_loaded_models, 2);
  EXPECT_EQ(c->gateway.lifecycle.max_loaded_bytes, 8000000000);
  const auto& p = c->gateway.lifecycle.models.at("a/b");
  EXPECT_EQ(p.load.context_length, 8192);
  EXPECT_EQ(p.sampling.seed, INT64_MIN);
}

TEST(ConfigTest, KeysAndTheLoopbackGuard) {
  auto c = ParseConfig(R"({
    "listen": "0.0.0.0:50051",
    "keys": [{"tenant": "app", "key_sha256": "%s", "roles": ["inference"],
              "models": ["qwen/*"], "requests_per_minute": 60, "weight": 2},
             {"tenant": "ops", "key_env": "OPS_KEY", "roles": ["inference", "admin"]}],
    "allow_cidrs": ["10.0.0.0/8"]
  })");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->identity.keys.size(), 2u);
  EXPECT_EQ(c->identity.keys[0].tenant.limits.requests_per_minute, 60);
  EXPECT_EQ(c->identity.keys[0].tenant.weight, 2);
  EXPECT_FALSE(c->identity.keys[0].tenant.admin);
  EXPECT_TRUE(c->identity.keys[1].tenant.admin);
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
  c->identity.keys.clear();
  auto st = ValidateConfig(*c, kKnown);
  EXPECT_NE(st.message().find("--insecure"), std::string::npos) << st;
  c->insecure = true;
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
  EXPECT_FALSE(ParseConfig(R"({"keys": [{"tenant": "x", "roles": ["root"]}]})").ok());
}

// Issue 13 item 13: only numeric loopback addresses and `localhost` count as loopback;
// "127.evil.example" is a name that may resolve anywhere, so it needs keys.
TEST(ConfigTest, LoopbackGuardParsesTheAddress) {
  for (const char* listen : {"127.0.0.1:50051", "127.8.9.10:1", "localhost:1", "LOCALHOST:1",
                             "[::1]:50051", "[::ffff:127.0.0.1]:1"}) {
    EXPECT_TRUE(IsLoopbackListen(listen)) << listen;
    Config c;
    c.listen = listen;
    EXPECT_TRUE(ValidateConfig(c, kKnown).ok()) << listen;
  }
  for (const char* listen : {"127.evil.example:50051", "127.0.0.1.nip.io:1", "localhost.evil:1",
                             "0.0.0.0:50051", "[::]:1", "[::2]:1", "10.0.0.1:1", "127.1:1"}) {
    EXPECT_FALSE(IsLoopbackListen(listen)) << listen;
    Config c;
    c.listen = listen;
    absl::Status st = ValidateConfig(c, kKnown);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << listen;
    EXPECT_NE(st.message().find("not a loopback address"), std::string::npos) << st;
  }
}

TEST(ConfigTest, ValidationNamesTheProblem) {
  Config c;
  c.drivers = {"sdk_ws", "grpc"};
  auto st = ValidateConfig(c, kKnown);
  EXPECT_NE(st.message().find("grpc"), std::string::npos);
  c = Config();
  c.host.base_url = "ftp://x";
  EXPECT_NE(ValidateConfig(c, kKnown).message().find("lmstudio.url"), std::string::npos);
  c = Config();
  c.listen = "nowhere";
  EXPECT_FALSE(ValidateConfig(c, kKnown).ok());
}

TEST(ConfigTest, MaxJsonDepthIsBoundedAndDeepFilesAreRefused) {
  auto c = ParseConfig(R"({"max_json_depth": 32})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gateway.max_json_depth, 32);
  EXPECT_EQ(ParseConfig("{}")->gateway.max_json_depth, 64);
  for (const char* bad : {R"({"max_json_depth": 0})", R"({"max_json_depth": 129})",
                          R"({"max_json_depth": "64"})"}) {
    auto b = ParseConfig(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("max_json_depth"), std::string::npos) << b.status();
  }
  const std::string deep = R"({"models": )" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  auto d = ParseConfig(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nested deeper than 256 levels"), std::string::npos)
      << d.status();
}

TEST(ConfigTest, ConsumerLimits) {
  auto d = ParseConfig("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->stream_write_stall, absl::Seconds(30));
  EXPECT_EQ(d->stream_max_pending_bytes, size_t{1} << 20);
  EXPECT_EQ(d->metrics_max_connections, 16);
  EXPECT_EQ(d->metrics_timeout, absl::Seconds(10));
  auto c = ParseConfig(R"({"limits": {"stream_write_stall_seconds": 2.5,
                           "stream_max_pending_bytes": 65536},
                           "metrics_max_connections": 4, "metrics_timeout_seconds": 3})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->stream_write_stall, absl::Milliseconds(2500));
  EXPECT_EQ(c->stream_max_pending_bytes, 65536u);
  EXPECT_EQ(c->metrics_max_connections, 4);
  EXPECT_EQ(c->metrics_timeout, absl::Seconds(3));
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
  auto typo = ParseConfig(R"({"limits": {"stream_write_stall": 1}})");
  EXPECT_NE(typo.status().message().find("limits.stream_write_stall"), std::string::npos);
  EXPECT_NE(ParseConfig(R"({"limits": {"stream_max_pending_bytes": -1}})").status().message()
                .find("limits.stream_max_pending_bytes"),
            std::string::npos);
  c->metrics_max_connections = 0;
  EXPECT_NE(ValidateConfig(*c, kKnown).message().find("metrics_max_connections"),
            std::string::npos);
}

}  // namespace
}  // namespace lmgate::services
