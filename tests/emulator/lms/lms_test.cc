// The `lms` stand-in binary against the in-process emulator: every command, the real CLI's JSON
// shapes (key order included), messages on the right stream, and exit codes.
#include <stdlib.h>

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/catalogue.h"
#include "tests/emulator/emulator.h"
#include "tests/emulator/lms/test_util.h"
#include "tests/emulator/model_host.h"

namespace lmgate::lms {
namespace {

using nlohmann::json;
using testing::LmsRun;

std::string g_lms;  // argv[1]: $(rootpath :lms)

// Keys of a JSON object in the order they were printed.
std::vector<std::string> KeyOrder(const std::string& object_text) {
  std::vector<std::string> keys;
  auto ordered = nlohmann::ordered_json::parse(object_text);
  for (auto it = ordered.begin(); it != ordered.end(); ++it) keys.push_back(it.key());
  return keys;
}

class LmsTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(emulator::Options options) {
    emulator_.reset();
    options.port = 0;
    auto e = emulator::Emulator::Create(options);
    ASSERT_TRUE(e.ok()) << e.status();
    emulator_ = *std::move(e);
    port_ = std::to_string(emulator_->port());
    home_ = testing::ScratchDir();
  }

  // `lms <command> --host 127.0.0.1 --port P args...` with a scratch HOME.
  LmsRun Lms(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--host", "127.0.0.1", "--port", port_});
    return LmsNoHost(args);
  }
  LmsRun LmsNoHost(const std::vector<std::string>& args,
                   std::vector<std::pair<std::string, std::string>> env = {}) {
    env.emplace_back("HOME", home_);
    return testing::RunLms(g_lms, args, env);
  }

  json Instances() { return emulator_->Stats()["loaded_instances"]; }

  std::unique_ptr<emulator::Emulator> emulator_;
  std::string port_;
  std::string home_;
};

TEST_F(LmsTest, LsJsonPrintsTheHostListInSchemaOrder) {
  LmsRun r = Lms({"ls", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  ASSERT_TRUE(absl::EndsWith(r.out, "]\n"));
  json models = json::parse(r.out);
  const auto& catalogue = emulator_->host().catalogue().models();
  ASSERT_EQ(models.size(), catalogue.size());
  for (size_t i = 0; i < catalogue.size(); ++i) {
    EXPECT_EQ(models[i], emulator::ModelInfoJson(catalogue[i])) << i;
  }
  // The zod schema's order: base fields, then the llm additions.
  std::string first = nlohmann::ordered_json::parse(r.out)[0].dump();
  EXPECT_EQ(KeyOrder(first),
            (std::vector<std::string>{"type", "modelKey", "format", "displayName", "publisher",
                                      "path", "sizeBytes", "indexedModelIdentifier",
                                      "deviceIdentifier", "paramsString", "architecture",
                                      "quantization", "variants", "selectedVariant", "vision",
                                      "trainedForToolUse", "maxContextLength"}));
}

TEST_F(LmsTest, LsFiltersKeysAndVariants) {
  auto count = [&](std::vector<std::string> args) {
    LmsRun r = Lms(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out, nullptr, false).size();
  };
  EXPECT_EQ(count({"ls", "--json", "--llm"}), 3u);
  EXPECT_EQ(count({"ls", "--json", "--embedding"}), 2u);
  EXPECT_EQ(count({"ls", "--json", "--llm", "--embedding"}), 5u);
  LmsRun one = Lms({"ls", "qwen/qwen3-4b", "--json"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(json::parse(one.out)[0]["modelKey"], "qwen/qwen3-4b");
  LmsRun grouped = Lms({"ls", "--variants", "--json"});
  ASSERT_EQ(grouped.code, 0) << grouped.err;
  json groups = json::parse(grouped.out);
  ASSERT_EQ(groups.size(), 5u);
  EXPECT_EQ(groups[0]["model"]["modelKey"], "qwen/qwen3-4b");
  EXPECT_EQ(groups[0]["variants"].size(), 1u);
  LmsRun both = Lms({"ls", "qwen/qwen3-4b", "--variants"});
  EXPECT_EQ(both.code, 1);
  EXPECT_EQ(both.err, "Error: Cannot combine a model key argument with --variants.\n");
}

TEST_F(LmsTest, LsHumanTableMarksLoadedModels) {
  ASSERT_TRUE(emulator_->Load("google/gemma-3-1b").ok());
  LmsRun r = Lms({"ls"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "\nYou have 5 models, taking up 5.92 GB of disk space.\n\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "LLM  ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "google/gemma-3-1b (1 variant)")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "Local     \u2713 LOADED")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "EMBEDDING")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "Nomic BERT")) << r.out;
}

TEST_F(LmsTest, PsJsonHasInstanceStateAndParallel) {
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen", 300000, 8192, 2).ok());
  ASSERT_TRUE(emulator_->Load("text-embedding-nomic-embed-text-v1.5").ok());
  LmsRun r = Lms({"ps", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json ps = json::parse(r.out);
  ASSERT_EQ(ps.size(), 2u);
  const json& llm = ps[0];
  EXPECT_EQ(llm["identifier"], "my-qwen");
  EXPECT_EQ(llm["modelKey"], "qwen/qwen3-4b");
  EXPECT_EQ(llm["contextLength"], 8192);
  EXPECT_EQ(llm["ttlMs"], 300000);
  EXPECT_TRUE(llm["lastUsedTime"].is_null());
  EXPECT_EQ(llm["status"], "idle");
  EXPECT_EQ(llm["queued"], 0);
  EXPECT_EQ(llm["parallel"], 2);
  EXPECT_FALSE(llm.contains("instanceReference"));
  EXPECT_EQ(ps[1]["type"], "embedding");
  EXPECT_TRUE(ps[1]["parallel"].is_null());
  std::vector<std::string> keys = KeyOrder(nlohmann::ordered_json::parse(r.out)[0].dump());
  std::vector<std::string> tail(keys.end() - 10, keys.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"identifier", "ttlMs", "lastUsedTime", "vision",
                                            "trainedForToolUse", "maxContextLength",
                                            "contextLength", "status", "queued", "parallel"}));
}

// A host that leaves the default slot count out of the load config: like the real CLI (the SDK's
// config parser), `ps` shows the default 4.
TEST_F(LmsTest, PsShowsTheSdkDefaultParallelWhenTheHostOmitsIt) {
  ASSERT_TRUE(emulator_->ApplySettings({{"omit_default_parallel", true}}).ok());
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b").ok());
  LmsRun r = Lms({"ps", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json ps = json::parse(r.out);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0]["parallel"], 4);
  LmsRun human = Lms({"ps"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_TRUE(absl::StrContains(human.out, "4096       4           Local")) << human.out;
}

TEST_F(LmsTest, PsHumanAndEmpty) {
  LmsRun empty = Lms({"ps"});
  ASSERT_EQ(empty.code, 0);
  EXPECT_EQ(empty.out, "");
  EXPECT_EQ(empty.err,
            "No models are currently loaded.\n\nTo load a model, run:\n\n    lms load <model path>\n");
  EXPECT_EQ(Lms({"ps", "--json"}).out, "[]\n");

  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen", 300000, 8192, 2).ok());
  LmsRun r = Lms({"ps"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(
      r.out, "\nIDENTIFIER    MODEL            STATUS    SIZE       CONTEXT    PARALLEL    "
             "DEVICE    TTL    \nmy-qwen       qwen/qwen3-4b    IDLE      2.50 GB    8192       "
             "2           Local     5m / 5m\n"))
      << r.out;
}

TEST_F(LmsTest, LoadAppliesFlagsAndNamesTheIdentifier) {
  LmsRun r = Lms({"load", "qwen/qwen3-4b-thinking-2507", "-y", "-c", "8192", "--identifier",
                  "thinker", "--ttl", "300", "--parallel", "2", "--gpu", "0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The spinner goes to stdout, terminal or not (Spinner.ts), and is cleared at the end.
  EXPECT_TRUE(absl::StartsWith(r.out, "\x1B[?25l\rLoading qwen/qwen3-4b-thinking-2507 ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\rLoading qwen/qwen3-4b-thinking-2507 100% ")) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "\r\x1B[K\x1B[?25h")) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "Model loaded successfully in ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, ".\n(2.33 GiB)\n")) << r.err;
  EXPECT_TRUE(absl::EndsWith(
      r.err, "To use the model in the API/SDK, use the identifier \"thinker\".\n"))
      << r.err;
  json instances = Instances();
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0]["modelKey"], "qwen/qwen3-4b-thinking-2507");
  EXPECT_EQ(instances[0]["identifier"], "thinker");
  EXPECT_EQ(instances[0]["contextLength"], 8192);
  EXPECT_EQ(instances[0]["ttlMs"], 300000);
  EXPECT_EQ(instances[0]["parallel"], 2);
  EXPECT_EQ(instances[0]["jit"], false);
}

TEST_F(LmsTest, LoadExactMatchesThePathOnly) {
  const std::string path = "lmstudio-community/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf";
  LmsRun r = Lms({"load", "--exact", "-y", "--", path});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "use the identifier \"qwen/qwen3-4b\"")) << r.err;
  // A model key is not a path.
  LmsRun key = Lms({"load", "--exact", "qwen/qwen3-4b"});
  EXPECT_EQ(key.code, 1);
  EXPECT_TRUE(absl::StartsWith(
      key.err, "Model not found\n\nNo model found with path being exactly \"qwen/qwen3-4b\"."))
      << key.err;
  EXPECT_TRUE(absl::StrContains(key.err, "lms load --exact ")) << key.err;
  LmsRun none = Lms({"load", "--exact"});
  EXPECT_EQ(none.code, 1);
  EXPECT_TRUE(absl::StartsWith(none.err, "Path not provided")) << none.err;
}

TEST_F(LmsTest, LoadFuzzyYesTakesTheFirstBestMatch) {
  // "qwen3-4b" matches both qwen models equally well: the first listed wins, with a warning.
  LmsRun r = Lms({"load", "qwen3-4b", "-y"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(
      r.err, "W 2 models match the provided model key on the same device. Loading the first one.\n"))
      << r.err;
  EXPECT_EQ(Instances()[0]["modelKey"], "qwen/qwen3-4b");
}

TEST_F(LmsTest, LoadFailures) {
  LmsRun unknown = Lms({"load", "no/such-model", "-y"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(absl::StartsWith(
      unknown.err, "Model not found\n\nNo model found that matches model key \"no/such-model\"."))
      << unknown.err;
  // Without -y the real CLI would prompt; there is no terminal.
  LmsRun ambiguous = Lms({"load", "qwen"});
  EXPECT_EQ(ambiguous.code, 1);
  EXPECT_EQ(ambiguous.out, "\n! Multiple models match the provided model key. Please select one.\n");
  EXPECT_TRUE(absl::StrContains(ambiguous.err, "cannot prompt")) << ambiguous.err;
  EXPECT_EQ(emulator_->Stats()["loads_started"], 0);
  // The host fails the load half-way.
  emulator_->FailNextLoads(1);
  LmsRun failed = Lms({"load", "google/gemma-3-1b", "-y"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_TRUE(absl::StartsWith(failed.err, "Error: ")) << failed.err;
  EXPECT_TRUE(Instances().empty());
}

TEST_F(LmsTest, LoadEstimateOnlyLoadsNothing) {
  LmsRun r = Lms({"load", "google/gemma-3-1b", "-y", "--estimate-only", "-c", "8192", "--gpu", "max"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "Model: google/gemma-3-1b\nContext Length: 8,192\n"
                                      "GPU Offload: 100%\nEstimated GPU Memory:   "))
      << r.err;
  EXPECT_TRUE(absl::EndsWith(
      r.err, "\nEstimate: This model may be loaded based on your resource guardrails settings.\n"));
  EXPECT_EQ(emulator_->Stats()["loads_started"], 0);
}

TEST_F(LmsTest, UnloadByIdentifierAllAndTheOnlyOne) {
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen").ok());
  ASSERT_TRUE(emulator_->Load("google/gemma-3-1b").ok());
  LmsRun one = Lms({"unload", "my-qwen"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.err, "Model \"my-qwen\" unloaded.\n");
  ASSERT_EQ(Instances().size(), 1u);
  // Exactly one left: `unload` without an identifier takes it.
  LmsRun only = Lms({"unload"});
  ASSERT_EQ(only.code, 0) << only.err;
  EXPECT_EQ(only.err, "Model \"google/gemma-3-1b\" unloaded.\n");
  EXPECT_TRUE(Instances().empty());

  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b").ok());
  ASSERT_TRUE(emulator_->Load("text-embedding-bge-small-en-v1.5").ok());
  LmsRun all = Lms({"unload", "--all"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.err,
            "Unloading \"qwen/qwen3-4b\"...\nUnloading \"text-embedding-bge-small-en-v1.5\"...\n"
            "Unloaded 2 models.\n");
  EXPECT_TRUE(Instances().empty());
  EXPECT_EQ(Lms({"unload", "-a"}).err, "No models to unload.\n");
}

TEST_F(LmsTest, UnloadErrorsKeepTheRealExitCodes) {
  // The real CLI prints "Model Not Found" and exits 0.
  LmsRun unknown = Lms({"unload", "nope"});
  EXPECT_EQ(unknown.code, 0);
  EXPECT_EQ(unknown.err,
            "Model Not Found\n\nCannot find a model with the identifier \"nope\".\n\n"
            "To see a list of loaded models, run:\n\n    lms ps\n");
  LmsRun nothing = Lms({"unload"});
  EXPECT_EQ(nothing.code, 1);
  EXPECT_EQ(nothing.err, "You don't have any models loaded. Use \"lms load\" to load a model.\n");
  LmsRun both = Lms({"unload", "-a", "x"});
  EXPECT_EQ(both.code, 0);
  EXPECT_TRUE(absl::StartsWith(both.err, "Invalid Usage\n\n")) << both.err;
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b").ok());
  ASSERT_TRUE(emulator_->Load("google/gemma-3-1b").ok());
  LmsRun choose = Lms({"unload"});
  EXPECT_EQ(choose.code, 1);
  EXPECT_EQ(choose.out, "! To unload all models, use the --all flag.\n\n");
  EXPECT_EQ(Instances().size(), 2u);
}

TEST_F(LmsTest, ServerStatusReadsTheLastServerSettings) {
  LmsRun none = LmsNoHost({"server", "status", "--json"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, "{\"running\":false}\n");
  EXPECT_EQ(LmsNoHost({"server", "status"}).err, "The server is not running.\n");

  testing::WriteFile(home_ + "/.lmstudio/.internal/http-server-config.json",
                     absl::StrCat(R"({"port":)", port_, R"(,"networkInterface":"127.0.0.1"})"));
  EXPECT_EQ(LmsNoHost({"server", "status", "--json"}).out,
            absl::StrCat("{\"running\":true,\"port\":", port_, "}\n"));
  EXPECT_EQ(LmsNoHost({"server", "status"}).err,
            absl::StrCat("The server is running on port ", port_, ".\n"));

  testing::RefusingPort closed;
  testing::WriteFile(home_ + "/.lmstudio/.internal/http-server-config.json",
                     absl::StrCat(R"({"port":)", closed.port(), "}"));
  EXPECT_EQ(LmsNoHost({"server", "status", "--json"}).out,
            absl::StrCat("{\"running\":false,\"port\":", closed.port(), "}\n"));
}

TEST_F(LmsTest, StatusShowsTheServerAndLoadedModels) {
  LmsRun empty = Lms({"status"});
  ASSERT_EQ(empty.code, 0) << empty.err;
  EXPECT_EQ(empty.out, absl::StrCat("Server: ON (port: ", port_, ")\n\nNo Models Loaded\n"));
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen").ok());
  EXPECT_EQ(Lms({"status"}).out, absl::StrCat("Server: ON (port: ", port_,
                                              ")\n\nLoaded Models\n  \u00b7 my-qwen - 2.50 GB\n"));
  testing::RefusingPort closed;
  LmsRun off = LmsNoHost({"status", "--host", "127.0.0.1", "--port", std::to_string(closed.port())});
  EXPECT_EQ(off.code, 0);
  EXPECT_EQ(off.out,
            "Server:  OFF \n\n(i) To start the server, run the following command:\n\n"
            "    lms server start\n");
}

// The real CLI (0.3.43) asks repository/lmLinkStatus before each model command and carries on
// when the host cannot answer it.
TEST_F(LmsTest, ModelCommandsAskLmLinkStatusFirstAndTolerateItsAbsence) {
  for (std::vector<std::string> args : {std::vector<std::string>{"ls", "--json"},
                                        {"ps", "--json"},
                                        {"load", "qwen/qwen3-4b", "-y"},
                                        {"unload", "qwen/qwen3-4b"}}) {
    emulator_->ClearFrames();
    LmsRun r = Lms(args);
    ASSERT_EQ(r.code, 0) << args[0] << ": " << r.err;
    std::vector<json> calls;
    for (const json& f : emulator_->Frames()) {
      if (f.contains("json") && f["json"].value("type", "") == "rpcCall") calls.push_back(f);
    }
    ASSERT_FALSE(calls.empty()) << args[0];
    EXPECT_EQ(calls[0]["namespace"], "repository") << args[0];
    EXPECT_EQ(calls[0]["json"]["endpoint"], "lmLinkStatus") << args[0];
  }
  ASSERT_TRUE(emulator_->ApplySettings({{"lm_link_status", false}}).ok());
  LmsRun r = Lms({"ps", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "[]\n");
}

TEST_F(LmsTest, UnreachableServerFailsEveryClientCommand) {
  testing::RefusingPort closed;
  const std::string where = absl::StrCat("127.0.0.1:", closed.port());
  for (std::vector<std::string> args :
       {std::vector<std::string>{"ls", "--json"}, {"ps", "--json"}, {"load", "x", "-y"},
        {"unload", "x"}}) {
    args.insert(args.end(), {"--host", "127.0.0.1", "--port", std::to_string(closed.port())});
    LmsRun r = LmsNoHost(args);
    EXPECT_EQ(r.code, 1) << args[0];
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_EQ(r.err, absl::StrCat("Error: The server does not appear to be running at ", where,
                                  ". Please make sure the server is running and accessible at "
                                  "the specified address.\n"))
        << args[0];
  }
  LmsRun bad_host = LmsNoHost({"ps", "--host", "http://127.0.0.1"});
  EXPECT_EQ(bad_host.code, 1);
  EXPECT_EQ(bad_host.err, "Error: Host should not include the protocol.\n");
}

TEST_F(LmsTest, DiscoveryThroughTheServerInfoFile) {
  const std::string info = home_ + "/server-info.json";
  testing::WriteFile(info, absl::StrCat(R"({"port":)", port_, "}"));
  LmsRun r = LmsNoHost({"ps", "--json"}, {{"LMS_API_SERVER_INFO_PATH", info}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  testing::RefusingPort closed;
  testing::WriteFile(info, absl::StrCat(R"({"port":)", closed.port(), "}"));
  LmsRun failed = LmsNoHost({"ps", "--json"}, {{"LMS_API_SERVER_INFO_PATH", info}});
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, absl::StrCat("Error: Failed to connect using ", info, ".\n"));
}

// The real CLI answers `-v` / `--version` wherever it is in argv, even after `--`, with exit 0
// and without running the command.
TEST_F(LmsTest, VersionAnywhereInArgvPrintsItAndExitsZero) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--version"},
                                             {"-v"},
                                             {"ps", "--json", "--version"},
                                             {"unload", "--", "-v"},
                                             {"load", "--identifier", "-v", "qwen/qwen3-4b"}}) {
    LmsRun r = LmsNoHost(args);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_EQ(r.out, "0.0.47 (lmgate lms stand-in)\n") << absl::StrJoin(args, " ");
  }
}

TEST_F(LmsTest, UsageErrorsExitOne) {
  EXPECT_EQ(LmsNoHost({"ps", "--bogus"}).code, 1);
  EXPECT_EQ(LmsNoHost({"nonsense"}).err, "error: unknown command 'nonsense'\n");
  EXPECT_EQ(LmsNoHost({"--help"}).code, 0);
}

TEST_F(LmsTest, TokenProtectedHostRejectsTheCli) {
  // lms 07b7252 authenticates as "lms-cli-remote-*" (legacy credentials win over LM_API_TOKEN in
  // the SDK), so a host that requires a token refuses it.
  emulator::Options o;
  o.api_token = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";
  Start(o);
  LmsRun r = LmsNoHost({"ps", "--json", "--host", "127.0.0.1", "--port", port_},
                       {{"LM_API_TOKEN", o.api_token}});
  // The SDK logs the rejection; the command never settles and Node exits 13.
  EXPECT_EQ(r.code, 13);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StartsWith(r.err, "W [LMStudioClient][Repository][ClientPort][WsClientTransport] "
                                      "WebSocket error: Error: Failed to authenticate: "))
      << r.err;
  EXPECT_TRUE(absl::EndsWith(r.err, "Warning: Detected unsettled top-level await at "
                                    "file:///lms/index.js\n"))
      << r.err;
}

// The real CLI finds its home directory when it starts (findLMStudioHome) and records it in
// ~/.lmstudio-home-pointer; a HOME that cannot take that file kills it before any command.
TEST_F(LmsTest, StateUnderHomeAndAnUnusableHomeFailsEveryCommand) {
  LmsRun r = Lms({"ps", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  char* real = realpath(home_.c_str(), nullptr);
  const std::string real_home = real;
  free(real);
  EXPECT_EQ(testing::ReadFile(home_ + "/.lmstudio-home-pointer"), real_home + "/.lmstudio");
  // An existing ~/.cache/lm-studio is preferred, and an existing pointer is followed.
  testing::RefusingPort closed;
  const std::string config = absl::StrCat(R"({"port":)", closed.port(), "}");
  const std::string status = absl::StrCat(R"({"running":false,"port":)", closed.port(), "}\n");
  home_ = testing::ScratchDir();
  testing::WriteFile(home_ + "/.cache/lm-studio/.internal/http-server-config.json", config);
  EXPECT_EQ(LmsNoHost({"server", "status", "--json"}).out, status);
  EXPECT_TRUE(absl::EndsWith(testing::ReadFile(home_ + "/.lmstudio-home-pointer"),
                             "/.cache/lm-studio"));
  // $LMSTUDIO_HOME wins, and nothing is written under HOME.
  const std::string elsewhere = testing::ScratchDir();
  testing::WriteFile(elsewhere + "/.internal/http-server-config.json", config);
  home_ = testing::ScratchDir();
  EXPECT_EQ(LmsNoHost({"server", "status", "--json"}, {{"LMSTUDIO_HOME", elsewhere}}).out, status);
  EXPECT_EQ(testing::ReadFile(home_ + "/.lmstudio-home-pointer"), "");

  // HOME is a file (unwritable even for root): Node's uncaught ENOTDIR, exit 1, for any command.
  const std::string file = testing::ScratchDir() + "/not-a-dir";
  testing::WriteFile(file, "x");
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"ps", "--json"}, {"--version"}}) {
    home_ = file;
    LmsRun bad = LmsNoHost(args);
    EXPECT_EQ(bad.code, 1) << args[0];
    EXPECT_EQ(bad.out, "") << args[0];
    EXPECT_TRUE(absl::StartsWith(bad.err, absl::StrCat("Error: ENOTDIR: not a directory, open '",
                                                        file, "/.lmstudio-home-pointer'\n")))
        << bad.err;
    EXPECT_TRUE(absl::StrContains(bad.err, "code: 'ENOTDIR'")) << bad.err;
  }
  home_ = "/nonexistent-lmgate-home";
  LmsRun missing = LmsNoHost({"ls", "--json"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(absl::StartsWith(
      missing.err, "Error: ENOENT: no such file or directory, lstat '/nonexistent-lmgate-home'\n"))
      << missing.err;
}

}  // namespace
}  // namespace lmgate::lms

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    fprintf(stderr, "usage: lms_test <path of the lms stand-in>\n");
    return 2;
  }
  lmgate::lms::g_lms = argv[1];
  return RUN_ALL_TESTS();
}
