#include "services/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

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

// Issue 18: RegistryOptions::load_timeout was never set from the config, so a load was cut at
// the registry's 10 min default whatever lmstudio.load_timeout_seconds said.
TEST(ConfigTest, LoadTimeoutReachesTheRegistry) {
  auto c = ParseConfig(R"({"lmstudio": {"url": "http://lm:1234", "load_timeout_seconds": 1200}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host.load_timeout, absl::Seconds(1200));
  EXPECT_EQ(c->gateway.lifecycle.load_timeout, absl::Seconds(1200));
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

TEST(ConfigTest, TransportLimits) {
  auto d = ParseConfig("{}");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->limits.max_request_bytes, 4 << 20);
  EXPECT_EQ(d->limits.server_memory_bytes, int64_t{32} << 20);
  EXPECT_EQ(d->limits.max_concurrent_streams_per_connection, 1000);
  EXPECT_EQ(d->limits.max_connections, 1024);
  EXPECT_EQ(d->limits.handshake_timeout, absl::Seconds(10));
  auto c = ParseConfig(R"({"limits": {"max_request_bytes": 1048576, "server_memory_bytes": 67108864,
      "max_concurrent_streams_per_connection": 64, "max_connections": 100,
      "handshake_timeout_seconds": 2.5}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->limits.max_request_bytes, 1 << 20);
  EXPECT_EQ(c->limits.server_memory_bytes, int64_t{64} << 20);
  EXPECT_EQ(c->limits.max_concurrent_streams_per_connection, 64);
  EXPECT_EQ(c->limits.max_connections, 100);
  EXPECT_EQ(c->limits.handshake_timeout, absl::Milliseconds(2500));
  struct {
    const char* json;
    const char* names;
  } bad[] = {{R"({"limits": {"max_conections": 5}})", "limits.max_conections"},
             {R"({"limits": {"max_connections": 0}})", "limits.max_connections"},
             {R"({"limits": {"max_request_bytes": 10}})", "limits.max_request_bytes"},
             {R"({"limits": {"server_memory_bytes": 1000}})", "limits.server_memory_bytes"},
             {R"({"limits": {"handshake_timeout_seconds": 0}})", "limits.handshake_timeout_seconds"},
             {R"({"limits": {"max_concurrent_streams_per_connection": 1.5}})",
              "limits.max_concurrent_streams_per_connection"}};
  for (const auto& b : bad) {
    auto r = ParseConfig(b.json);
    ASSERT_FALSE(r.ok()) << b.json;
    EXPECT_NE(r.status().message().find(b.names), std::string::npos) << r.status();
  }
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

// A syntax error names the line and column of the character that broke it (nlohmann gives a
// byte offset), prefixed by the file name for a file.
TEST(ConfigTest, SyntaxErrorsNameLineAndColumn) {
  const std::string text = "{\n  \"listen\": \"127.0.0.1:1\",\n  \"log_level\": ,\n}\n";
  auto parsed = ParseConfig(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message().rfind("config:3:16: not valid JSON: ", 0), 0u)
      << parsed.status();
  EXPECT_NE(parsed.status().message().find("unexpected ','"), std::string::npos);

  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/bad.json";
  std::ofstream(path) << "// a comment\n{\"listen\": \"127.0.0.1:1\"\n";
  auto loaded = LoadConfigFile(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message().rfind(path + ":3:1: not valid JSON: ", 0), 0u)
      << loaded.status();
  EXPECT_EQ(ParseConfig("").status().message().rfind("config:1:1: ", 0), 0u);
  // A number beyond double: nlohmann throws out_of_range, not parse_error (the config fuzzer's
  // corpus aborted on it).
  auto huge = ParseConfig(R"({"worker_threads": 1e309})");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("1e309"), std::string::npos) << huge.status();
}

// nlohmann keeps the last of two equal keys; lmgate refuses them, at any depth, naming the key,
// its line and the object.
TEST(ConfigTest, DuplicateKeysAreRefusedAtAnyDepth) {
  struct Case {
    const char* json;
    const char* mentions;
  } cases[] = {
      {"{\"listen\": \"a:1\",\n \"listen\": \"b:2\"}", "duplicate key \"listen\" at line 2 (in the top-level object; first at line 1)"},
      {"{\"lmstudio\": {\n  \"url\": \"http://a:1\",\n  \"url\": \"http://b:2\"}}", "duplicate key \"url\" at line 3 (in lmstudio; first at line 2)"},
      {"{\"keys\": [{\"tenant\": \"a\"},\n {\"tenant\": \"b\", \"tenant\": \"c\"}]}", "duplicate key \"tenant\" at line 2 (in keys[1]"},
      {"{\"models\": {\"a/b\": {\"sampling\": {\"seed\": 1, \"seed\": 2}}}}", "duplicate key \"seed\" at line 1 (in models.a/b.sampling"},
      {R"({"listen": "a:1", "\u006cisten": "b:2"})", "duplicate key \"listen\""},
  };
  for (const auto& c : cases) {
    auto parsed = ParseConfig(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos) << parsed.status();
  }
  // The same key in different objects, and braces, quotes and comment marks inside strings and
  // comments, are no duplicates.
  auto ok = ParseConfig(R"({
    "default_model": "a{\"b//c/*",  // "default_model": {
    /* "default_model": */ "default_embedding_model": "x}]",
    "models": {"a/b": {"ttl_seconds": 1}, "c/d": {"ttl_seconds": 2}},
    "keys": [{"tenant": "a", "key_env": "A_KEY"}, {"tenant": "b", "key_env": "B_KEY"}]
  })");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

// A count or duration outside its range is named with the range, never taken as "unlimited".
TEST(ConfigTest, NegativeCountsAreRefusedWithTheirRange) {
  struct Case {
    const char* json;
    const char* mentions;
  } cases[] = {
      {R"({"max_loaded_models": -1})", "max_loaded_models: must be >= 0 (0 = unlimited)"},
      {R"({"max_loaded_bytes": -5})", "max_loaded_bytes: must be >= 0"},
      {R"({"keys": [{"tenant": "a", "key_env": "K", "requests_per_minute": -1}]})", "keys[0].requests_per_minute: must be >= 0"},
      {R"({"keys": [{"tenant": "a", "key_env": "K", "tokens_per_minute": -1}]})", "keys[0].tokens_per_minute: must be >= 0"},
      {R"({"keys": [{"tenant": "a", "key_env": "K", "concurrent_streams": -2}]})", "keys[0].concurrent_streams: must be >= 0"},
      {R"({"keys": [{"tenant": "a", "key_env": "K", "weight": 0}]})", "keys[0].weight: must be > 0"},
      {R"({"keys": [{"tenant": "a", "key_env": "K", "weight": -1}]})", "keys[0].weight: must be > 0"},
      {R"({"admission": {"max_concurrent_total": -1}})", "admission.max_concurrent_total: must be >= 0"},
      {R"({"admission": {"max_queue_per_model": -1}})", "admission.max_queue_per_model: must be >= 0"},
      {R"({"admission": {"concurrency_per_model": 0}})", "admission.concurrency_per_model: must be >= 1"},
      {R"({"admission": {"queue_timeout_seconds": 0}})", "admission.queue_timeout_seconds: must be > 0"},
      {R"({"models": {"a/b": {"cpu_threads": 0}}})", "models.a/b.cpu_threads: must be >= 1"},
      {R"({"models": {"a/b": {"eval_batch_size": -1}}})", "models.a/b.eval_batch_size: must be >= 1"},
      {R"({"shutdown_grace_seconds": -1})", "shutdown_grace_seconds: must be >= 0"},
      {R"({"lmstudio": {"connect_timeout_seconds": -1}})", "lmstudio.connect_timeout_seconds: must be >= 0"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseConfig(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos) << parsed.status();
  }
  Config c;
  c.worker_threads = 0;
  EXPECT_NE(ValidateConfig(c, kKnown).message().find("worker_threads: must be 1..4096"),
            std::string::npos);
  c = Config();
  c.host.request_timeout = absl::ZeroDuration();
  EXPECT_NE(ValidateConfig(c, kKnown).message().find("lmstudio.request_timeout_seconds: must be > 0"),
            std::string::npos);
}

// A start refuses a metrics address without a port (MetricsServer::Start), so validation does.
TEST(ConfigTest, ListenAddressesNeedAPort) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "localhost:http", "::1", "h:99999"}) {
    Config c;
    c.metrics_listen = bad;
    auto st = ValidateConfig(c, kKnown);
    EXPECT_NE(st.message().find("metrics_listen: \"" + std::string(bad) + "\" is not host:port"),
              std::string::npos)
        << bad << ": " << st;
    c = Config();
    c.listen = bad;
    EXPECT_NE(ValidateConfig(c, kKnown).message().find("listen"), std::string::npos) << bad;
  }
  for (const char* good : {"", "127.0.0.1:0", "[::1]:9464", "localhost:9464"}) {
    Config c;
    c.metrics_listen = good;
    EXPECT_TRUE(ValidateConfig(c, kKnown).ok()) << good;
  }
}

// --check_config prints this: every key, re-readable, with no secret in it.
TEST(ConfigTest, EffectiveConfigRoundTripsWithoutSecrets) {
  setenv("CONFIG_TEST_TOKEN", "sk-lm-fromenv:secret2", 1);
  auto c = ParseConfig(R"({
    "listen": "127.0.0.1:6000",
    "lmstudio": {"url": "http://lm:1234", "api_token": "sk-lm-abc:supersecret", "max_retries": 3},
    "drivers": ["rest", "openai"],
    "default_ttl_seconds": 600,
    "models": {"qwen/qwen3-4b": {"context_length": 8192, "keep_loaded": true, "ttl_seconds": 30,
                                 "sampling": {"temperature": 0.5, "stop": ["\n\n"]}}},
    "admission": {"max_queue_per_model": 8, "queue_timeout_seconds": 2.5},
    "keys": [{"tenant": "app", "key_env": "APP_KEY", "requests_per_minute": 60, "weight": 2,
              "max_priority": "normal"},
             {"tenant": "ops", "client_cn": "ops.example", "roles": ["admin"]}],
    "metrics_listen": ""
  })");
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string printed = ConfigToJson(*c);
  EXPECT_EQ(printed.find("supersecret"), std::string::npos) << printed;
  EXPECT_NE(printed.find(kRedacted), std::string::npos) << printed;
  for (const char* key : {"\"listen\"", "\"lmstudio\"", "\"connect_timeout_seconds\"",
                          "\"drivers\"", "\"prefer_configured_order\"", "\"default_model\"",
                          "\"default_embedding_model\"", "\"default_ttl_seconds\"",
                          "\"allow_client_ttl\"", "\"max_loaded_models\"", "\"max_loaded_bytes\"",
                          "\"refresh_interval_seconds\"", "\"models\"", "\"admission\"",
                          "\"aging_seconds\"", "\"keys\"", "\"allow_cidrs\"", "\"tls\"",
                          "\"metrics_listen\"", "\"insecure\"", "\"worker_threads\"",
                          "\"shutdown_grace_seconds\"", "\"log_level\""}) {
    EXPECT_NE(printed.find(key), std::string::npos) << key << " missing from\n" << printed;
  }
  // Printing what was read back gives the same text (only the token became the marker).
  auto again = ParseConfig(printed);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(ConfigToJson(*again), printed);
  EXPECT_EQ(again->gateway.admission.queue_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(again->identity.keys[1].tenant.admin, true);
  EXPECT_EQ(again->identity.keys[1].tenant.inference, false);

  // A token from the environment shows as its variable's name.
  auto from_env = ParseConfig(R"({"lmstudio": {"api_token_env": "CONFIG_TEST_TOKEN"}})");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->host.api_token, "sk-lm-fromenv:secret2");
  const std::string env_printed = ConfigToJson(*from_env);
  EXPECT_EQ(env_printed.find("secret2"), std::string::npos) << env_printed;
  EXPECT_NE(env_printed.find("\"api_token_env\": \"CONFIG_TEST_TOKEN\""), std::string::npos)
      << env_printed;
}

TEST(Config, ConversationsKeys) {
  auto defaults = ParseConfig("{}");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->conversations.ttl, absl::Hours(1));
  EXPECT_EQ(defaults->conversations.max_entries, 10000u);
  EXPECT_EQ(defaults->conversations.max_bytes, size_t{64} << 20);
  EXPECT_EQ(defaults->conversations.max_conversation_bytes, size_t{1} << 20);
  auto c = ParseConfig(R"({"conversations": {"ttl_seconds": 600, "max_entries": 5,
                           "max_bytes": 100000, "max_conversation_bytes": 4096}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->conversations.ttl, absl::Minutes(10));
  EXPECT_EQ(c->conversations.max_entries, 5u);
  EXPECT_EQ(c->conversations.max_bytes, 100000u);
  EXPECT_EQ(c->conversations.max_conversation_bytes, 4096u);
  auto again = ParseConfig(ConfigToJson(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->conversations.max_conversation_bytes, 4096u);
  for (const char* bad : {R"({"conversations": {"ttl": 5}})",
                          R"({"conversations": {"ttl_seconds": 0}})",
                          R"({"conversations": {"max_entries": -1}})",
                          R"({"conversations": {"max_conversation_bytes": 10}})"}) {
    auto st = ParseConfig(bad);
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.status().message().find("conversations."), std::string::npos) << st.status();
  }
}

TEST(ConfigTest, HttpIngressKeys) {
  auto c = ParseConfig(R"({"http_listen": "127.0.0.1:8080",
                          "http": {"threads": 3, "max_body_bytes": 65536, "max_header_bytes": 8192,
                                   "max_headers": 50, "max_connections": 10,
                                   "idle_timeout_seconds": 5, "read_timeout_seconds": 2}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok());
  EXPECT_EQ(c->http.threads, 3);
  EXPECT_EQ(c->http.max_body_bytes, 65536);
  EXPECT_EQ(c->http.read_timeout, absl::Seconds(2));
  auto again = ParseConfig(ConfigToJson(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->http_listen, "127.0.0.1:8080");
  EXPECT_EQ(again->http.max_connections, 10);
  // Off by default; unknown and out-of-range keys name themselves.
  EXPECT_TRUE(ParseConfig("{}")->http_listen.empty());
  auto bad = ParseConfig(R"({"http": {"max_body": 1}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("http.max_body"), std::string::npos) << bad.status();
  bad = ParseConfig(R"({"http": {"threads": 0}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("http.threads"), std::string::npos) << bad.status();
  // No TLS on the ingress yet: refused clearly rather than served in plaintext beside TLS gRPC.
  auto tls = ParseConfig(R"({"http_listen": "127.0.0.1:8080",
                            "tls": {"cert_file": "a.pem", "key_file": "a.key"}})");
  ASSERT_TRUE(tls.ok()) << tls.status();
  auto st = ValidateConfig(*tls, kKnown);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("http_listen"), std::string::npos) << st;
  auto open = ParseConfig(R"({"http_listen": "0.0.0.0:8080"})");
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(ValidateConfig(*open, kKnown).ok());  // not loopback, no keys
  auto not_addr = ParseConfig(R"({"http_listen": "8080"})");
  ASSERT_TRUE(not_addr.ok());
  EXPECT_FALSE(ValidateConfig(*not_addr, kKnown).ok());
}

}  // namespace
}  // namespace lmgate::services

namespace lmgate::services {
namespace {

// Issue 14: the `cluster` section (several lmgates on one host sharing state through Redis).
TEST(ConfigClusterTest, OffByDefault) {
  auto c = ParseConfig("{}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->cluster.enabled());
  EXPECT_EQ(c->cluster.on_redis_error, cluster::OnRedisError::kOpen);
  EXPECT_EQ(c->cluster.heartbeat, absl::Seconds(5));
}

TEST(ConfigClusterTest, ReadsEveryKey) {
  setenv("CONFIG_TEST_REDIS_PW", "hunter2-redis", 1);
  auto c = ParseConfig(R"({"cluster": {"redis_url": "redis://10.0.0.5:6380/2",
      "redis_password_env": "CONFIG_TEST_REDIS_PW", "on_redis_error": "closed",
      "command_timeout_seconds": 0.1, "heartbeat_seconds": 0.5}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cluster.enabled());
  EXPECT_EQ(c->cluster.on_redis_error, cluster::OnRedisError::kClosed);
  EXPECT_EQ(c->cluster.command_timeout, absl::Milliseconds(100));
  EXPECT_EQ(c->cluster.heartbeat, absl::Milliseconds(500));
  EXPECT_TRUE(ValidateConfig(*c, kKnown).ok()) << ValidateConfig(*c, kKnown);
  const std::string printed = ConfigToJson(*c);
  EXPECT_NE(printed.find("\"on_redis_error\": \"closed\""), std::string::npos) << printed;
  EXPECT_EQ(printed.find("hunter2"), std::string::npos) << printed;
  auto again = ParseConfig(printed);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(ConfigToJson(*again), printed);
}

TEST(ConfigClusterTest, APasswordInTheUrlIsNeverPrinted) {
  auto c = ParseConfig(R"({"cluster": {"redis_url": "redis://:s3cret-pw@127.0.0.1:6379"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(ValidateConfig(*c, kKnown).ok());
  const std::string printed = ConfigToJson(*c);
  EXPECT_EQ(printed.find("s3cret-pw"), std::string::npos) << printed;
  EXPECT_NE(printed.find("redis://<redacted>@127.0.0.1:6379/0"), std::string::npos) << printed;
}

// What --check_config (and a start) refuses, each with a message naming the key.
TEST(ConfigClusterTest, RefusesBadSettingsNamingTheKey) {
  unsetenv("CONFIG_TEST_NO_SUCH_VAR");
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"cluster": {"redis_url": "rediss://r:6379"}})", "rediss:// (TLS) is not supported"},
      {R"({"cluster": {"redis_url": "http://r:6379"}})", "cluster.redis_url must look like"},
      {R"({"cluster": {"redis_url": "redis://r:notaport"}})", "cluster.redis_url"},
      {R"({"cluster": {"redis_url": "redis://r", "redis_password_env": "CONFIG_TEST_NO_SUCH_VAR"}})",
       "CONFIG_TEST_NO_SUCH_VAR, which is unset"},
      {R"({"cluster": {"redis_password_env": "X"}})", "set without cluster.redis_url"},
      {R"({"cluster": {"redis_url": "redis://r", "command_timeout_seconds": 0}})",
       "cluster.command_timeout_seconds"},
      {R"({"cluster": {"redis_url": "redis://r", "heartbeat_seconds": 0}})",
       "cluster.heartbeat_seconds"},
  };
  for (const Case& k : cases) {
    auto c = ParseConfig(k.json);
    ASSERT_TRUE(c.ok()) << k.json << ": " << c.status();
    absl::Status st = ValidateConfig(*c, kKnown);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << k.json;
    EXPECT_NE(st.message().find(k.expect), std::string::npos) << k.json << ": " << st;
  }
  auto bad = ParseConfig(R"({"cluster": {"on_redis_error": "maybe"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cluster.on_redis_error: must be \"open\""),
            std::string::npos)
      << bad.status();
  auto unknown = ParseConfig(R"({"cluster": {"redis_host": "r"}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("cluster.redis_host: unknown key"), std::string::npos)
      << unknown.status();
}

}  // namespace
}  // namespace lmgate::services
