// The cli driver's parser on what the real `lms` prints (shared/reference/lmstudio-protocol.md §5),
// on the shapes of older and newer CLIs, and on garbage.
#include "backends/cli/lms_output.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "backends/cli/cli_driver.h"

namespace lmgate::backends::cli {
namespace {

// `lms ps --json` captured from the real CLI (lms@07b7252) against an emulator, verbatim (§5).
constexpr char kCapturedPs[] =
    R"([{"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf","displayName":"Qwen3 4B","publisher":"qwen","path":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","sizeBytes":2497280256,"indexedModelIdentifier":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","deviceIdentifier":null,"paramsString":"4B","architecture":"qwen3","quantization":{"name":"Q4_K_M","bits":4},"identifier":"my-qwen","ttlMs":300000,"lastUsedTime":null,"vision":false,"trainedForToolUse":true,"maxContextLength":40960,"contextLength":8192,"status":"idle","queued":0,"parallel":4}])"
    "\n";

// `lms ls --json`: the SDK ModelInfo objects (§1.4; the `resolved` info of §1.8 is one).
constexpr char kCapturedLs[] =
    R"([{"type":"llm","modelKey":"qwen/qwen3-4b","format":"gguf","displayName":"Qwen3 4B","publisher":"qwen","path":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","sizeBytes":2497280256,"indexedModelIdentifier":"lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf","deviceIdentifier":null,"paramsString":"4B","architecture":"qwen3","quantization":{"name":"Q4_K_M","bits":4},"vision":false,"trainedForToolUse":true,"maxContextLength":40960},)"
    R"({"type":"embedding","modelKey":"text-embedding-nomic-embed-text-v1.5","format":"gguf","displayName":"Nomic Embed Text v1.5","publisher":"nomic-ai","path":"nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf","sizeBytes":84106624,"indexedModelIdentifier":"nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf","deviceIdentifier":null,"paramsString":"137M","architecture":"nomic-bert","maxContextLength":2048}])"
    "\n";

TEST(ParsePsJson, CapturedRealOutput) {
  absl::StatusOr<std::vector<InstanceInfo>> ps = ParsePsJson(kCapturedPs);
  ASSERT_TRUE(ps.ok()) << ps.status();
  ASSERT_EQ(ps->size(), 1u);
  const InstanceInfo& i = (*ps)[0];
  EXPECT_EQ(i.identifier, "my-qwen");
  EXPECT_EQ(i.model_key, "qwen/qwen3-4b");
  EXPECT_EQ(i.type, ModelType::kLlm);
  EXPECT_EQ(i.context_length, 8192);
  ASSERT_TRUE(i.ttl.has_value());
  EXPECT_EQ(*i.ttl, absl::Minutes(5));
  EXPECT_FALSE(i.last_used.has_value());
  EXPECT_EQ(i.parallel_slots, 4);
  EXPECT_EQ(i.instance_reference, "");  // `ps --json` drops it
}

TEST(ParsePsJson, OlderAndNewerShapes) {
  // Older CLIs: no status/queued/parallel; embedding `parallel` is null; lastUsedTime set.
  absl::StatusOr<std::vector<InstanceInfo>> ps = ParsePsJson(
      R"([{"type":"embedding","modelKey":"e","identifier":"e","contextLength":2048,)"
      R"("ttlMs":null,"lastUsedTime":1700000000000,"parallel":null},)"
      R"({"modelKey":"m","identifier":"m:2","futureField":{"x":[1,2]}},{"modelKey":"no-id"}])");
  ASSERT_TRUE(ps.ok()) << ps.status();
  ASSERT_EQ(ps->size(), 2u);
  EXPECT_EQ((*ps)[0].type, ModelType::kEmbedding);
  EXPECT_EQ((*ps)[0].parallel_slots, 0);
  EXPECT_FALSE((*ps)[0].ttl.has_value());
  EXPECT_EQ((*ps)[0].last_used, absl::FromUnixMillis(1700000000000));
  EXPECT_EQ((*ps)[1].identifier, "m:2");
  EXPECT_EQ((*ps)[1].type, ModelType::kUnknown);
  EXPECT_TRUE(ParsePsJson("[]\n")->empty());
}

TEST(ParseLsJson, CapturedRealOutputKeepsPaths) {
  absl::StatusOr<std::vector<LsModel>> ls = ParseLsJson(kCapturedLs);
  ASSERT_TRUE(ls.ok()) << ls.status();
  ASSERT_EQ(ls->size(), 2u);
  const LsModel& llm = (*ls)[0];
  EXPECT_EQ(llm.info.key, "qwen/qwen3-4b");
  EXPECT_EQ(llm.path, "lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf");
  EXPECT_EQ(llm.info.type, ModelType::kLlm);
  EXPECT_EQ(llm.info.display_name, "Qwen3 4B");
  EXPECT_EQ(llm.info.size_bytes, 2497280256);
  EXPECT_EQ(llm.info.quantization, "Q4_K_M");
  EXPECT_EQ(llm.info.quantization_bits, 4);
  EXPECT_EQ(llm.info.max_context_length, 40960);
  EXPECT_EQ(llm.info.architecture, "qwen3");
  EXPECT_EQ(llm.info.params, "4B");
  EXPECT_TRUE(llm.info.trained_for_tool_use);
  EXPECT_EQ((*ls)[1].info.type, ModelType::kEmbedding);
  EXPECT_EQ((*ls)[1].info.quantization, "");
}

TEST(ParseLsJson, VariantsShapeAndSkippedElements) {
  absl::StatusOr<std::vector<LsModel>> ls = ParseLsJson(
      R"([{"model":{"type":"llm","modelKey":"k","path":"p"},"variants":[{"modelKey":"k@q4"}]},)"
      R"(1,"x",null,{"type":"llm"},{"modelKey":7}])");
  ASSERT_TRUE(ls.ok()) << ls.status();
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_EQ((*ls)[0].info.key, "k");
  EXPECT_EQ((*ls)[0].path, "p");
}

TEST(ParseJson, ArrayAfterOtherLinesIsFound) {
  absl::StatusOr<std::vector<InstanceInfo>> ps = ParsePsJson(
      "W You are using a development build of lms-cli.\n[{\"identifier\":\"a\",\"modelKey\":\"a\"}]\n");
  ASSERT_TRUE(ps.ok()) << ps.status();
  EXPECT_EQ(ps->size(), 1u);
}

TEST(ParseJson, GarbageIsInternalAndQuotesTheText) {
  for (const char* text : {"", "   \n", "not json at all", "{\"an\":\"object\"}", "[1, 2", "[{]"}) {
    absl::StatusOr<std::vector<InstanceInfo>> ps = ParsePsJson(text);
    ASSERT_FALSE(ps.ok()) << text;
    EXPECT_EQ(ps.status().code(), absl::StatusCode::kInternal) << text;
    EXPECT_NE(ps.status().message().find("lms ps --json"), absl::string_view::npos);
  }
  absl::Status s = ParseLsJson("Error: something odd\n").status();
  EXPECT_NE(s.message().find("Error: something odd"), absl::string_view::npos) << s;
  // Deep nesting and odd bytes never crash.
  EXPECT_FALSE(ParseLsJson(std::string(20000, '[')).ok());
  (void)ParseLsJson(std::string("[\"\xff\xfe\"]\n[\x00]"));
}

TEST(ParseLoadedIdentifier, ClosingLineOfLmsLoad) {
  const std::string err =
      "Model loaded successfully in 52.31ms.\n(2.33 GiB)\n"
      "To use the model in the API/SDK, use the identifier \"qwen/qwen3-4b:2\".\n";
  EXPECT_EQ(ParseLoadedIdentifier(err), "qwen/qwen3-4b:2");
  // Coloured (chalk.green) when colours are forced.
  EXPECT_EQ(ParseLoadedIdentifier("use the identifier \"\x1b[32mmy \"odd\" id\x1b[39m\"."),
            "my \"odd\" id");
  EXPECT_EQ(ParseLoadedIdentifier("Model loaded successfully"), std::nullopt);
  EXPECT_EQ(ParseLoadedIdentifier("use the identifier \""), std::nullopt);
  EXPECT_EQ(ParseLoadedIdentifier("use the identifier \"\"."), std::nullopt);
}

TEST(ClassifyDiagnostics, RealCliMessages) {
  EXPECT_EQ(ClassifyDiagnostics("Error: The server does not appear to be running at "
                                "127.0.0.1:1234. Please make sure the server is running and "
                                "accessible at the specified address.\n"),
            LmsDiagnostic::kServerUnreachable);
  EXPECT_EQ(ClassifyDiagnostics("Error: Failed to start or connect to local LM Studio API server."),
            LmsDiagnostic::kServerUnreachable);
  EXPECT_EQ(ClassifyDiagnostics("Model Not Found\n\nCannot find a model with the identifier "
                                "\"x\".\n\nTo see a list of loaded models, run:\n\n    lms ps\n"),
            LmsDiagnostic::kInstanceNotFound);
  EXPECT_EQ(ClassifyDiagnostics("Model not found\n\nNo model found that matches model key \"x\"."),
            LmsDiagnostic::kModelNotFound);
  EXPECT_EQ(ClassifyDiagnostics("Model not found\n\nNo model found with path being exactly \"x\"."),
            LmsDiagnostic::kModelNotFound);
  EXPECT_EQ(ClassifyDiagnostics("You don't have any models loaded. Use \"lms load\" to load a model."),
            LmsDiagnostic::kNothingLoaded);
  EXPECT_EQ(ClassifyDiagnostics("Error: Failed to authenticate: Invalid token"),
            LmsDiagnostic::kAuthentication);
  EXPECT_EQ(ClassifyDiagnostics("error: unknown option '--exact'"), LmsDiagnostic::kUsage);
  EXPECT_EQ(ClassifyDiagnostics("\x1b[31merror: unknown command 'ps'\x1b[39m"),
            LmsDiagnostic::kUsage);
  EXPECT_EQ(ClassifyDiagnostics("Model \"x\" unloaded.\n"), LmsDiagnostic::kNone);
  EXPECT_EQ(ClassifyDiagnostics(""), LmsDiagnostic::kNone);
}

TEST(StatusOfRun, CodesByDiagnosticThenExitCode) {
  // The real CLI exits 0 after "Model Not Found" on unload.
  absl::Status s = StatusOfRun("lms unload x", 0, 0,
                               "Model Not Found\n\nCannot find a model with the identifier \"x\".");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("Cannot find a model with the identifier \"x\"."),
            absl::string_view::npos) << s;
  EXPECT_TRUE(StatusOfRun("lms unload x", 0, 0, "Model \"x\" unloaded.\n").ok());
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "Error: The server does not appear to be running").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusOfRun("lms ps", -1, 9, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusOfRun("lms load", 1, 0, "Error: boom").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "error: unknown option '--json'").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "Error: Failed to authenticate: no").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusOfRun("lms load x", 1, 0, "? Select a model | (cannot prompt)").code(),
            absl::StatusCode::kFailedPrecondition);
  // The message is one line.
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "a\n\n  b\n").message(),
            "`lms ps` failed with exit code 1: a b");
}

TEST(StatusOfRun, AnUnusableHomeAndExitCode13) {
  absl::Status home = StatusOfRun(
      "lms ps --json", 1, 0,
      "Error: EACCES: permission denied, open '/srv/.lmstudio-home-pointer'\n{\n  errno: -13,\n"
      "  code: 'EACCES'\n}\n",
      "/srv");
  EXPECT_EQ(home.code(), absl::StatusCode::kFailedPrecondition) << home;
  EXPECT_TRUE(absl::StrContains(home.message(), "HOME=/srv")) << home;
  EXPECT_TRUE(absl::StrContains(home.message(), "EACCES")) << home;
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "Error: ENOENT: no such file or directory, lstat '/gone'",
                        "/gone")
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // An unrelated ENOENT is no HOME problem, not even one under the host's ~/.lmstudio.
  EXPECT_EQ(StatusOfRun("lms ps", 1, 0, "Error: ENOENT: no such file or directory, open '/x'")
                .code(),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusOfRun("lms load", 1, 0,
                        "Error: ENOENT: no such file or directory, lstat "
                        "'/home/u/.lmstudio/models/a.gguf'",
                        "/home/u")
                .code(),
            absl::StatusCode::kUnknown);
  absl::Status auth = StatusOfRun("lms ps", 13, 0, "Warning: Detected unsettled top-level await");
  EXPECT_EQ(auth.code(), absl::StatusCode::kUnauthenticated) << auth;
  EXPECT_TRUE(absl::StrContains(auth.message(), "exit code 13")) << auth;
  EXPECT_TRUE(absl::StrContains(auth.message(), "lmstudio.api_token")) << auth;
}

TEST(StripAnsi, RemovesEscapes) {
  EXPECT_EQ(StripAnsi("\x1b[1m\x1b[32mok\x1b[39m\x1b[22m"), "ok");
  EXPECT_EQ(StripAnsi("a\x1b"), "a");
  EXPECT_EQ(StripAnsi("a\x1b[12"), "a");
  EXPECT_EQ(StripAnsi("plain"), "plain");
}

TEST(LoadArgs, FlagsFromParams) {
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.identifier = "my-odd";
  p.context_length = 8192;
  p.gpu_offload_ratio = 0.5;
  p.parallel_slots = 2;
  p.ttl = absl::Milliseconds(1500);
  absl::StatusOr<std::vector<std::string>> args = LoadArgs(p, "a/b.gguf");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (std::vector<std::string>{"load", "--exact", "-y", "--gpu", "0.5",
                                             "--context-length", "8192", "--parallel", "2",
                                             "--ttl", "2", "--identifier=my-odd", "--",
                                             "a/b.gguf"}));
  // An identifier `lms` could read as an option (it takes `-v` anywhere) is refused.
  p.identifier = "-odd";
  EXPECT_EQ(LoadArgs(p, "a/b.gguf").status().code(), absl::StatusCode::kInvalidArgument);
  p = LoadParams();
  p.gpu_offload_ratio = 0;
  EXPECT_EQ((*LoadArgs(p, "x"))[4], "off");
  p.gpu_offload_ratio = 1;
  EXPECT_EQ((*LoadArgs(p, "x"))[4], "max");
  p.gpu_offload_ratio = 2;
  EXPECT_EQ(LoadArgs(p, "x").status().code(), absl::StatusCode::kInvalidArgument);
  p = LoadParams();
  p.flash_attention = true;
  p.cpu_threads = 4;
  absl::Status unsupported = LoadArgs(p, "x").status();
  EXPECT_EQ(unsupported.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(unsupported.message().find("cpu_threads, flash_attention"), absl::string_view::npos);
  p = LoadParams();
  p.ttl = absl::ZeroDuration();
  EXPECT_EQ(LoadArgs(p, "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadArgs(LoadParams(), "").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lmgate::backends::cli
