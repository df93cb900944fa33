// The cli driver against the emulator through the `lms` stand-in: list, load (identifier, context
// length, TTL, parallel, GPU; exact model, not a fuzzy pick), unload, and its errors — unknown
// model, missing binary (with the install hint), unreachable host, timeout and cancel (the child
// is killed and reaped).
#include "backends/cli/cli_driver.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/builtin.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/emulator.h"
#include "tests/emulator/lms/test_util.h"

namespace lmgate::backends::cli {
namespace {

using nlohmann::json;

std::string g_lms;  // argv[1]: $(rootpath //tests/emulator/lms)

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

class CliDriverTest : public ::testing::Test {
 protected:
  void SetUp() override { StartEmulator({}); }

  void StartEmulator(emulator::Options options) {
    emulator_.reset();
    options.port = 0;
    auto e = emulator::Emulator::Create(std::move(options));
    ASSERT_TRUE(e.ok()) << e.status();
    emulator_ = *std::move(e);
  }

  // A driver for the emulator (or `base_url`), recording the pid of every child it starts.
  std::unique_ptr<CliDriver> Driver(const std::string& base_url = "",
                                    const std::string& lms_path = "") {
    CliDriver::Options o;
    o.host.base_url = base_url.empty() ? emulator_->http_url() : base_url;
    o.host.lms_path = lms_path.empty() ? g_lms : lms_path;
    o.kill_grace = absl::Seconds(1);
    o.on_child_started = [this](pid_t pid) {
      std::lock_guard<std::mutex> lock(pids_mu_);
      pids_.push_back(pid);
      if (on_child_) on_child_(static_cast<int>(pids_.size()));
    };
    o.host.load_timeout = load_timeout_;
    auto d = CliDriver::Create(std::move(o));
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : nullptr;
  }

  std::vector<pid_t> Pids() {
    std::lock_guard<std::mutex> lock(pids_mu_);
    return pids_;
  }

  json Instances() { return emulator_->Stats()["loaded_instances"]; }

  std::unique_ptr<emulator::Emulator> emulator_;
  absl::Duration load_timeout_ = absl::Minutes(10);
  std::function<void(int)> on_child_;  // called with the 1-based index of each child
  std::mutex pids_mu_;
  std::vector<pid_t> pids_;
};

TEST_F(CliDriverTest, LifecycleOnly) {
  auto d = Driver();
  EXPECT_EQ(d->kind(), DriverKind::kCli);
  Capabilities c = d->capabilities();
  EXPECT_TRUE(c.list_models && c.load && c.unload);
  EXPECT_FALSE(c.chat || c.complete || c.embed || c.tokenize || c.load_progress);
  EXPECT_EQ(d->Embed({}, "m", {"x"}).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(d->host_args(),
            (std::vector<std::string>{"--host", "127.0.0.1", "--port",
                                      std::to_string(emulator_->port())}));
}

TEST_F(CliDriverTest, ProbeRunsLmsPs) {
  auto d = Driver();
  EXPECT_TRUE(d->Probe({}).ok());
  EXPECT_EQ(Pids().size(), 1u);
  EXPECT_TRUE(d->Probe({}).ok());  // cached
  EXPECT_EQ(Pids().size(), 1u);
}

TEST_F(CliDriverTest, MissingBinaryIsFailedPreconditionWithInstallHints) {
  for (const std::string& path :
       {std::string("lmgate-test-no-such-lms"), std::string("/nonexistent/bin/lms")}) {
    auto d = Driver("", path);
    for (absl::Status s : {d->Probe({}), d->ListModels({}).status(), d->Unload({}, "x")}) {
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), path)) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "~/.lmstudio/bin")) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "npx lmstudio install-cli")) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "lmstudio.lms_path")) << s;
    }
  }
}

TEST_F(CliDriverTest, UnreachableHostIsUnavailable) {
  lms::testing::RefusingPort closed;
  auto d = Driver(absl::StrCat("http://127.0.0.1:", closed.port()));
  absl::Status s = d->Probe({});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "does not appear to be running")) << s;
  EXPECT_EQ(d->ListModels({}).status().code(), absl::StatusCode::kUnavailable);
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  EXPECT_EQ(d->Load({}, p, nullptr).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(CliDriverTest, ListModelsDownloadedAndLoaded) {
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen", 300000, 8192, 2).ok());
  ASSERT_TRUE(emulator_->Load("text-embedding-nomic-embed-text-v1.5").ok());
  auto d = Driver();
  absl::StatusOr<HostModels> models = d->ListModels({});
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->downloaded.size(), 5u);
  EXPECT_EQ(models->downloaded[0].key, "qwen/qwen3-4b");
  EXPECT_EQ(models->downloaded[0].type, ModelType::kLlm);
  EXPECT_EQ(models->downloaded[0].max_context_length, 40960);
  EXPECT_EQ(models->downloaded[3].type, ModelType::kEmbedding);
  EXPECT_TRUE(models->downloaded_known && models->loaded_known);
  ASSERT_EQ(models->loaded.size(), 2u);
  const InstanceInfo& llm = models->loaded[0];
  EXPECT_EQ(llm.identifier, "my-qwen");
  EXPECT_EQ(llm.model_key, "qwen/qwen3-4b");
  EXPECT_EQ(llm.type, ModelType::kLlm);
  EXPECT_EQ(llm.context_length, 8192);
  EXPECT_EQ(llm.ttl, absl::Minutes(5));
  EXPECT_EQ(llm.parallel_slots, 2);
  EXPECT_EQ(models->loaded[1].type, ModelType::kEmbedding);
  EXPECT_EQ(Pids().size(), 2u);  // ls and ps
}

TEST_F(CliDriverTest, LoadWithIdentifierContextLengthAndTtl) {
  auto d = Driver();
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.identifier = "my-qwen";
  p.context_length = 8192;
  p.ttl = absl::Seconds(300);
  p.parallel_slots = 2;
  p.gpu_offload_ratio = 0.5;
  absl::StatusOr<InstanceInfo> info = d->Load({}, p, nullptr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->identifier, "my-qwen");
  EXPECT_EQ(info->model_key, "qwen/qwen3-4b");
  EXPECT_EQ(info->type, ModelType::kLlm);
  EXPECT_EQ(info->context_length, 8192);
  EXPECT_EQ(info->ttl, absl::Minutes(5));
  EXPECT_EQ(info->parallel_slots, 2);
  json instances = Instances();
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0]["identifier"], "my-qwen");
  EXPECT_EQ(instances[0]["contextLength"], 8192);
  EXPECT_EQ(instances[0]["ttlMs"], 300000);
  EXPECT_EQ(instances[0]["parallel"], 2);
  EXPECT_EQ(Pids().size(), 3u);  // ls, load, ps
}

TEST_F(CliDriverTest, LoadHostAssignedIdentifiers) {
  auto d = Driver();
  LoadParams p;
  p.model_key = "text-embedding-bge-small-en-v1.5";
  absl::StatusOr<InstanceInfo> first = d->Load({}, p, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->identifier, "text-embedding-bge-small-en-v1.5");
  EXPECT_EQ(first->type, ModelType::kEmbedding);
  absl::StatusOr<InstanceInfo> second = d->Load({}, p, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->identifier, "text-embedding-bge-small-en-v1.5:2");
}

TEST_F(CliDriverTest, LoadPicksTheExactModelNotTheFuzzyFirst) {
  // With the thinking model listed first, `lms load qwen/qwen3-4b -y` would load it (equal fuzzy
  // scores, list order wins). The driver loads by path with --exact.
  const std::string catalogue = lms::testing::ScratchDir() + "/catalogue.json";
  lms::testing::WriteFile(catalogue, R"({"models":[
      {"type":"llm","modelKey":"qwen/qwen3-4b-thinking-2507","path":"q/thinking.gguf",
       "sizeBytes":1000000},
      {"type":"llm","modelKey":"qwen/qwen3-4b","path":"q/plain.gguf","sizeBytes":1000000}]})");
  emulator::Options o;
  o.catalogue_json = catalogue;
  StartEmulator(o);
  auto d = Driver();
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  absl::StatusOr<InstanceInfo> info = d->Load({}, p, nullptr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->model_key, "qwen/qwen3-4b");
  ASSERT_EQ(Instances().size(), 1u);
  EXPECT_EQ(Instances()[0]["modelKey"], "qwen/qwen3-4b");
}

TEST_F(CliDriverTest, LoadErrors) {
  auto d = Driver();
  LoadParams p;
  p.model_key = "no/such-model";
  absl::Status unknown = d->Load({}, p, nullptr).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
  EXPECT_TRUE(absl::StrContains(unknown.message(), "google/gemma-3-1b")) << unknown;

  p.model_key = "google/gemma-3-1b";
  p.flash_attention = true;
  EXPECT_EQ(d->Load({}, p, nullptr).status().code(), absl::StatusCode::kUnimplemented);
  p.flash_attention.reset();
  p.identifier = "gemma";
  emulator_->FailNextLoads(1);
  absl::Status failed = d->Load({}, p, nullptr).status();
  EXPECT_EQ(failed.code(), absl::StatusCode::kAborted) << failed;
  EXPECT_TRUE(absl::StrContains(failed.message(), "loading google/gemma-3-1b failed")) << failed;
  EXPECT_EQ(emulator_->Stats()["loads_started"], 1);
  EXPECT_TRUE(Instances().empty());
  p.model_key = "";
  EXPECT_EQ(d->Load({}, p, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CliDriverTest, LoadDeadlineKillsTheChild) {
  emulator_->SetLoadTimeMultiplier(1e6);  // the load would take days
  auto d = Driver();
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Seconds(2);
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  absl::Status s = d->Load(ctx, p, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  std::vector<pid_t> pids = Pids();
  ASSERT_EQ(pids.size(), 2u);  // ls, then the load that was killed
  for (pid_t pid : pids) EXPECT_TRUE(Gone(pid)) << pid;
  // The host drops the load when the killed child's socket closes (asynchronously); it never
  // finished.
  for (const json& i : Instances()) EXPECT_EQ(i["state"], "loading");
}

TEST_F(CliDriverTest, LoadTimeoutFromHostConfig) {
  emulator_->SetLoadTimeMultiplier(1e6);
  load_timeout_ = absl::Milliseconds(800);
  auto d = Driver();
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  absl::Status s = d->Load({}, p, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "lms load")) << s;
  for (pid_t pid : Pids()) EXPECT_TRUE(Gone(pid)) << pid;
}

TEST_F(CliDriverTest, CancelKillsTheLoadingChild) {
  emulator_->SetLoadTimeMultiplier(1e6);
  auto d = Driver();
  CallContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  on_child_ = [&](int index) {
    if (index == 2) ctx.cancel->Cancel();  // the `lms load` child has started
  };
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  absl::Status s = d->Load(ctx, p, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  std::vector<pid_t> pids = Pids();
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t pid : pids) EXPECT_TRUE(Gone(pid)) << pid;
  // A call cancelled before it starts runs nothing.
  EXPECT_EQ(d->ListModels(ctx).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(Pids().size(), 2u);
}

TEST_F(CliDriverTest, Unload) {
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen").ok());
  auto d = Driver();
  EXPECT_TRUE(d->Unload({}, "my-qwen").ok());
  EXPECT_TRUE(Instances().empty());
  // The real CLI exits 0 here; the driver reads its "Model Not Found".
  absl::Status missing = d->Unload({}, "my-qwen");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "Cannot find a model with the identifier"))
      << missing;
  // Never a bare `lms unload` (it would unload whatever single model is loaded).
  EXPECT_EQ(d->Unload({}, "").code(), absl::StatusCode::kInvalidArgument);
}

// Issue 13 item 13: the real `lms` prints its version for `-v` anywhere (even after `--`) and
// exits 0, so `lms unload -- -v` used to be reported as a successful unload. Identifiers that
// look like options are refused before anything runs, and an unload is checked with `lms ps`.
TEST_F(CliDriverTest, IdentifiersThatLookLikeOptionsAreRefused) {
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen").ok());
  auto d = Driver();
  for (const char* id : {"-v", "--version", "-a"}) {
    absl::Status s = d->Unload({}, id);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << id << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "starts with '-'")) << s;
  }
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.identifier = "-v";
  EXPECT_EQ(d->Load({}, p, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadArgs(p, "some/path.gguf").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Instances().size(), 1u);
}

TEST_F(CliDriverTest, UnloadThatDidNotHappenIsNotSuccess) {
  // An `lms` that exits 0 on `unload` without unloading (as the real one does after printing
  // its version); `ps` still lists the instance.
  const std::string fake = lms::testing::ScratchDir() + "/lms";
  lms::testing::WriteFile(fake, absl::StrCat(
      "#!/bin/sh\n"
      "if [ \"$1\" = unload ]; then echo 0.0.47; exit 0; fi\n"
      "exec '", std::filesystem::absolute(g_lms).string(), "' \"$@\"\n"));
  chmod(fake.c_str(), 0755);
  ASSERT_TRUE(emulator_->Load("qwen/qwen3-4b", "my-qwen").ok());
  auto d = Driver("", fake);
  absl::Status s = d->Unload({}, "my-qwen");
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "still lists my-qwen")) << s;
}

TEST_F(CliDriverTest, MissingBinaryDoesNotTellTheServersPath) {
  auto d = Driver("", "lmgate-test-no-such-lms");
  absl::Status s = d->Probe({});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "was not found on PATH")) << s;
  const char* path = getenv("PATH");
  ASSERT_NE(path, nullptr);
  EXPECT_FALSE(absl::StrContains(s.message(), path)) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "/usr/bin")) << s;
}

TEST_F(CliDriverTest, TokenProtectedHostIsUnauthenticated) {
  emulator::Options o;
  o.api_token = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";
  StartEmulator(o);
  CliDriver::Options options;
  options.host.base_url = emulator_->http_url();
  options.host.lms_path = g_lms;
  options.host.api_token = o.api_token;
  auto d = CliDriver::Create(options);
  ASSERT_TRUE(d.ok());
  absl::Status s = (*d)->Probe({});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  // The CLI exits 13 after the SDK logged the rejection; the message says what to do about it.
  EXPECT_TRUE(absl::StrContains(s.message(), "exit code 13")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Failed to authenticate")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Require Authentication")) << s;
}

// Exit code 13 alone (a CLI that logged nothing we recognise, e.g. with its warnings silenced):
// still an authentication failure, not an unknown one.
TEST_F(CliDriverTest, ExitCode13IsUnauthenticated) {
  const std::string fake = lms::testing::ScratchDir() + "/lms";
  lms::testing::WriteFile(fake,
                          "#!/bin/sh\necho 'Warning: Detected unsettled top-level await at "
                          "file:///lms/index.js' >&2\nexit 13\n");
  chmod(fake.c_str(), 0755);
  auto d = Driver("", fake);
  for (absl::Status s : {d->Probe({}), d->ListModels({}).status(), d->Unload({}, "x")}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "authentication")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "exit code 13")) << s;
  }
}

// `lms` records its home directory under $HOME when it starts and dies when it cannot: a clear
// FAILED_PRECONDITION naming HOME, not an unknown failure.
TEST_F(CliDriverTest, UnusableHomeIsFailedPreconditionNamingHome) {
  const std::string saved = getenv("HOME");
  for (const std::string& home : {lms::testing::ScratchDir() + "/a-file",
                                  std::string("/nonexistent-lmgate-home")}) {
    if (home != "/nonexistent-lmgate-home") lms::testing::WriteFile(home, "x");
    setenv("HOME", home.c_str(), 1);
    auto d = Driver();
    for (absl::Status s : {d->Probe({}), d->ListModels({}).status()}) {
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("HOME=", home))) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "writable")) << s;
    }
    LoadParams p;
    p.model_key = "qwen/qwen3-4b";
    EXPECT_EQ(d->Load({}, p, nullptr).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  setenv("HOME", saved.c_str(), 1);
}

// The real CLI draws its load spinner on stdout even when it is no terminal; the identifier
// still comes from the closing line.
TEST_F(CliDriverTest, LoadParsesTheIdentifierPastTheSpinner) {
  auto d = Driver();
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  p.identifier = "spun";
  auto info = d->Load({}, p, nullptr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->identifier, "spun");
  EXPECT_EQ(info->model_key, "qwen/qwen3-4b");
}

TEST_F(CliDriverTest, GarbageOutputIsInternalQuotingIt) {
  const std::string fake = lms::testing::ScratchDir() + "/lms";
  lms::testing::WriteFile(fake, "#!/bin/sh\necho 'Segmentation fault? not JSON'\n");
  chmod(fake.c_str(), 0755);
  auto d = Driver("", fake);
  absl::Status s = d->ListModels({}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Segmentation fault? not JSON")) << s;
}

TEST_F(CliDriverTest, BaseUrlsLmsCannotReach) {
  for (const char* url : {"https://127.0.0.1:1234", "http://[::1]:1234", "http://h:1/proxy"}) {
    auto d = Driver(url);
    ASSERT_NE(d, nullptr) << url;
    EXPECT_EQ(d->Probe({}).code(), absl::StatusCode::kFailedPrecondition) << url;
    EXPECT_EQ(d->ListModels({}).status().code(), absl::StatusCode::kFailedPrecondition) << url;
  }
  EXPECT_TRUE(Pids().empty());
  CliDriver::Options o;
  o.host.base_url = "ftp://x";
  EXPECT_EQ(CliDriver::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CliRegistration, BuiltInAsCli) {
  BackendRegistry registry;
  ASSERT_TRUE(RegisterBuiltinBackends(registry).ok());
  std::vector<std::string> names = registry.Names();
  EXPECT_NE(std::find(names.begin(), names.end(), "cli"), names.end());
  HostConfig config;
  config.lms_path = "lmgate-test-no-such-lms";
  auto driver = registry.Create("cli", config);
  ASSERT_TRUE(driver.ok()) << driver.status();
  EXPECT_EQ((*driver)->kind(), DriverKind::kCli);
  EXPECT_EQ((*driver)->Probe({}).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace lmgate::backends::cli

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    fprintf(stderr, "usage: cli_driver_test <path of the lms stand-in>\n");
    return 2;
  }
  lmgate::backends::cli::g_lms = argv[1];
  // `lms` writes ~/.lmstudio-home-pointer when it starts: keep it out of the real home.
  setenv("HOME", lmgate::lms::testing::ScratchDir().c_str(), 1);
  return RUN_ALL_TESTS();
}
