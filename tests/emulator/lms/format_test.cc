// The lms stand-in's pure parts: commander-style parsing and the real CLI's output formats.
#include <gtest/gtest.h>

#include "tests/emulator/lms/args.h"
#include "tests/emulator/lms/format.h"

namespace lmgate::lms {
namespace {

ParseOutcome Parse(std::vector<std::string> args) { return ParseCommandLine(args); }

TEST(Args, OptionsAnywhereEqualsFormShortValuesAndDoubleDash) {
  ParseOutcome p = Parse({"load", "--exact", "-c4096", "--identifier=-odd", "-y", "--host",
                          "127.0.0.1", "--", "--path-like"});
  ASSERT_TRUE(p.command.has_value()) << p.text;
  EXPECT_EQ(p.command->command, "load");
  EXPECT_EQ(p.command->Get("context-length"), "4096");
  EXPECT_EQ(p.command->Get("identifier"), "-odd");
  EXPECT_TRUE(p.command->Has("yes"));
  EXPECT_TRUE(p.command->Has("exact"));
  EXPECT_EQ(p.command->positionals, std::vector<std::string>{"--path-like"});

  p = Parse({"unload", "-a"});
  ASSERT_TRUE(p.command.has_value());
  EXPECT_TRUE(p.command->Has("all"));
  p = Parse({"load", "-yc", "512", "k"});  // combined short flags, value from the next word
  ASSERT_TRUE(p.command.has_value()) << p.text;
  EXPECT_EQ(p.command->Get("context-length"), "512");
  EXPECT_EQ(p.command->positionals, std::vector<std::string>{"k"});
  // A required value is taken even when it looks like an option (commander does the same).
  p = Parse({"load", "--identifier", "-x", "k"});
  ASSERT_TRUE(p.command.has_value());
  EXPECT_EQ(p.command->Get("identifier"), "-x");
}

TEST(Args, CommanderErrors) {
  auto error = [](std::vector<std::string> args) {
    ParseOutcome p = ParseCommandLine(args);
    EXPECT_FALSE(p.command.has_value());
    EXPECT_EQ(p.exit_code, 1);
    return p.text;
  };
  EXPECT_EQ(error({"ps", "--nope"}), "error: unknown option '--nope'\n");
  EXPECT_EQ(error({"--frobnicate"}), "error: unknown option '--frobnicate'\n");  // -v: lms_test
  EXPECT_EQ(error({"frobnicate"}), "error: unknown command 'frobnicate'\n");
  EXPECT_EQ(error({"ps", "extra"}),
            "error: too many arguments for 'ps'. Expected 0 arguments but got 1.\n");
  EXPECT_EQ(error({"load", "a", "b"}),
            "error: too many arguments for 'load'. Expected 1 argument but got 2.\n");
  EXPECT_EQ(error({"load", "k", "--ttl"}), "error: option '--ttl <seconds>' argument missing\n");
  EXPECT_EQ(error({"load", "k", "--gpu", "lots"}),
            "error: option '--gpu <offload-ratio>' argument 'lots' is invalid. Not a number\n");
  EXPECT_EQ(error({"load", "k", "--gpu", "1.5"}),
            "error: option '--gpu <offload-ratio>' argument '1.5' is invalid. Number out of "
            "range, must be between 0 and 1\n");
  EXPECT_EQ(error({"load", "k", "-c", "0"}),
            "error: option '-c, --context-length <length>' argument '0' is invalid. Number out "
            "of range, must be at least 1\n");
  EXPECT_EQ(error({"load", "k", "--ttl", "1.5"}),
            "error: option '--ttl <seconds>' argument '1.5' is invalid. Not an integer\n");
  EXPECT_EQ(error({"ps", "--port", "70000"}),
            "error: option '--port <port>' argument '70000' is invalid. Number out of range, "
            "must be at most 65535\n");
  EXPECT_EQ(error({"ps", "--json=yes"}), "error: unknown option '--json=yes'\n");
  // `lms server status` has no --host/--port in the real CLI.
  EXPECT_EQ(error({"server", "status", "--host", "h"}), "error: unknown option '--host'\n");
  EXPECT_EQ(error({"ps", "--quiet", "--verbose"}),
            "Only one of --logLevel, --verbose, or --quiet can be specified.\n");
}

TEST(Args, HelpAndMissingCommand) {
  ParseOutcome p = Parse({"--help"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_NE(p.text.find("Usage: lms"), std::string::npos);
  EXPECT_EQ(Parse({}).exit_code, 1);  // commander shows the help on stderr
  EXPECT_EQ(Parse({"server"}).exit_code, 1);
  EXPECT_EQ(Parse({"ls", "-h"}).exit_code, 0);
  p = Parse({"server", "status", "--json"});
  ASSERT_TRUE(p.command.has_value());
  EXPECT_EQ(p.command->command, "server status");
}

TEST(Args, JsNumber) {
  EXPECT_EQ(JsNumber("42"), 42);
  EXPECT_EQ(JsNumber(" 0.5 "), 0.5);
  EXPECT_EQ(JsNumber(""), 0);  // Number("") is 0
  EXPECT_EQ(JsNumber("1e3"), 1000);
  EXPECT_TRUE(std::isnan(JsNumber("abc")));
  EXPECT_TRUE(std::isnan(JsNumber("nan")));
  EXPECT_TRUE(std::isinf(JsNumber("Infinity")));
}

TEST(Fuzzy, MatchesInOrderBestScoreFirstTiesInListOrder) {
  std::vector<std::string> keys = {"qwen/qwen3-4b-thinking-2507", "google/gemma-3-1b",
                                   "qwen/qwen3-4b"};
  // Both qwen keys contain the whole pattern as a prefix: same score, list order decides. This
  // is why the cli driver loads with --exact.
  EXPECT_EQ(FuzzyFilter("qwen/qwen3-4b", keys), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(FuzzyFilter("GEMMA", keys), (std::vector<size_t>{1}));
  EXPECT_EQ(FuzzyFilter("g3", keys), (std::vector<size_t>{1}));
  EXPECT_TRUE(FuzzyFilter("zzz", keys).empty());
  EXPECT_EQ(FuzzyFilter("", keys).size(), 3u);
  // Consecutive characters score more: "4b" is a run in "qwen3-4b", scattered in "gemma...".
  std::vector<size_t> ranked = FuzzyFilter("4b", {"4-x-b", "x4b"});
  EXPECT_EQ(ranked, (std::vector<size_t>{1, 0}));
}

TEST(Format, SizesAndDurations) {
  EXPECT_EQ(FormatSizeBytes1000(512), "512 B");
  EXPECT_EQ(FormatSizeBytes1000(2497280256), "2.50 GB");
  EXPECT_EQ(FormatSizeBytes1000(84106624), "84.11 MB");
  EXPECT_EQ(FormatSizeBytes1024(2497280256), "2.33 GiB");
  EXPECT_EQ(FormatSizeBytes1024(0), "0 Bytes");
  EXPECT_EQ(FormatSizeBytes1024(1000), "1000 Bytes");
  EXPECT_EQ(FormatElapsedTime(52.3), "52.30ms");
  EXPECT_EQ(FormatElapsedTime(1500), "1.50s");
  EXPECT_EQ(FormatElapsedTime(62000), "1m 2.00s");
  EXPECT_EQ(FormatElapsedTime(3600000), "1h 0m 0.00s");
  EXPECT_EQ(FormatTimeLean(300000), "5m");
  EXPECT_EQ(FormatTimeLean(5400000), "2h");  // Math.round(1.5)
  EXPECT_EQ(FormatTimeLean(29400), "29s");
  EXPECT_EQ(ArchitectureName("nomic-bert"), "Nomic BERT");
  EXPECT_EQ(ArchitectureName("Qwen2"), "Qwen2");
  EXPECT_EQ(ArchitectureName("qwen3"), "qwen3");  // not in the CLI's table: unchanged
}

TEST(Format, ColumnifyPadsEveryColumn) {
  EXPECT_EQ(Columnify({"A", "BB", ""}, {{"xxx", "y", "\u2713 LOADED"}, {"z"}}),
            "A      BB            \n"
            "xxx    y     \u2713 LOADED\n"
            "z                    ");
}

// The `lms ps --json` line captured from the real CLI against an emulator (§5), and the host
// answers it was built from.
TEST(Format, PsEntryHasTheRealShapeAndKeyOrder) {
  Json info = Json::parse(R"({"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf",
      "displayName":"Qwen3 4B","publisher":"qwen",
      "path":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","sizeBytes":2497280256,
      "indexedModelIdentifier":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf",
      "deviceIdentifier":null,"paramsString":"4B","architecture":"qwen3",
      "quantization":{"bits":4,"name":"Q4_K_M"},"vision":false,"trainedForToolUse":true,
      "maxContextLength":40960,"identifier":"my-qwen","instanceReference":"3qgJ7YtbD6vtf-bz",
      "ttlMs":300000.0,"lastUsedTime":null,"contextLength":8192,"extraFieldTheSdkStrips":1})");
  Json state = {{"status", "idle"}, {"queued", 0}};
  // Verbatim from shared/reference/lmstudio-protocol.md §5.
  const std::string captured =
      R"([{"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf","displayName":"Qwen3 4B","publisher":"qwen","path":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","sizeBytes":2497280256,"indexedModelIdentifier":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","deviceIdentifier":null,"paramsString":"4B","architecture":"qwen3","quantization":{"name":"Q4_K_M","bits":4},"identifier":"my-qwen","ttlMs":300000,"lastUsedTime":null,"vision":false,"trainedForToolUse":true,"maxContextLength":40960,"contextLength":8192,"status":"idle","queued":0,"parallel":4}])";
  EXPECT_EQ("[" + Stringify(PsEntry(info, state, 4)) + "]", captured);
  Json embedding = {{"type", "embedding"}, {"modelKey", "e"}, {"identifier", "e"},
                    {"maxContextLength", 2048}, {"contextLength", 2048}, {"vision", false}};
  EXPECT_EQ(Stringify(PsEntry(embedding, state, std::nullopt)),
            R"({"type":"embedding","modelKey":"e","identifier":"e","maxContextLength":2048,)"
            R"("contextLength":2048,"status":"idle","queued":0,"parallel":null})");
}

TEST(Format, ModelInfoViewOrderAndStripping) {
  Json info = Json::parse(R"({"maxContextLength":2048,"type":"embedding","modelKey":"e",
      "variants":["e@q4"],"selectedVariant":"e@q4","trainedForToolUse":true,"reasoning":true})");
  EXPECT_EQ(Stringify(ModelInfoView(info)),
            R"({"type":"embedding","modelKey":"e","variants":["e@q4"],"selectedVariant":"e@q4",)"
            R"("maxContextLength":2048})");
}

TEST(Format, KvValueTakesTheLastField) {
  Json config = Json::parse(R"({"fields":[{"key":"a","value":1},{"key":"b","value":2},
      {"key":"a","value":3}]})");
  EXPECT_EQ(KvValue(config, "a"), Json(3));
  EXPECT_FALSE(KvValue(config, "c").has_value());
  EXPECT_FALSE(KvValue(Json("junk"), "a").has_value());
  EXPECT_EQ(StrField(Json::array(), "x"), "");
  EXPECT_TRUE(Field(Json{{"x", 1}}, "y").is_null());
}

}  // namespace
}  // namespace lmgate::lms
