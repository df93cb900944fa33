// The rest driver against the LM Studio host emulator, and against a local fake of an LM Studio
// older than 0.4 (REST v0 only).
#include "backends/rest/rest_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "backends/rest/register.h"
#include "tests/backends/http/driver_test_util.h"
#include "tests/backends/http/test_server.h"
#include "tests/emulator/emulator.h"

namespace lmgate::backends::rest {
namespace {

using ::testing::HasSubstr;
using testing::PollUntil;
using testing::RecordingObserver;

constexpr char kToken[] = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";

std::unique_ptr<RestDriver> MakeDriver(const std::string& url, const std::string& token = kToken) {
  RestDriver::Options o;
  o.host.base_url = url;
  o.host.api_token = token;
  auto d = RestDriver::Create(o);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? std::move(*d) : nullptr;
}

GenerateRequest Chat(const std::string& model, const std::string& text) {
  GenerateRequest r;
  r.model = model;
  r.messages = {{"user", text}};
  r.sampling.seed = 11;
  return r;
}

class RestDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emulator::Options options;
    options.settings.ttft_ms = 1;
    options.settings.tokens_per_second = 0;
    options.settings.load_ms_per_gb = 1;
    options.api_token = kToken;
    auto emu = emulator::Emulator::Create(options);
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = std::move(*emu);
    driver_ = MakeDriver(emu_->http_url() + "/api/v0/");
  }
  int64_t ActivePredictions() { return emu_->Stats()["predictions_active"].get<int64_t>(); }
  const InstanceInfo* FindLoaded(const HostModels& m, const std::string& id) {
    for (const InstanceInfo& i : m.loaded) {
      if (i.identifier == id) return &i;
    }
    return nullptr;
  }

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<RestDriver> driver_;
};

TEST_F(RestDriverTest, KindCapabilitiesProbeRegistration) {
  EXPECT_EQ(driver_->kind(), DriverKind::kRest);
  Capabilities c = driver_->capabilities();
  EXPECT_TRUE(c.list_models && c.load && c.unload && c.chat && c.complete && c.embed &&
              c.inference_stats && c.tool_calls && c.structured_output);
  EXPECT_FALSE(c.load_progress || c.tokenize);
  EXPECT_TRUE(driver_->Probe({}).ok());
  EXPECT_EQ(driver_->CountTokens({}, "m", "t").status().code(), absl::StatusCode::kUnimplemented);
  BackendRegistry registry;
  ASSERT_TRUE(RegisterRestDriver(registry).ok());
  HostConfig config;
  config.base_url = emu_->http_url();
  config.api_token = kToken;
  auto d = registry.Create("rest", config);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->kind(), DriverKind::kRest);
}

TEST_F(RestDriverTest, ListModelsMergesV0StateWithV1Instances) {
  ASSERT_TRUE(emu_->Load("qwen/qwen3-4b", "my-qwen", std::nullopt, 8192).ok());
  auto m = driver_->ListModels({});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->downloaded_known);
  EXPECT_TRUE(m->loaded_known);
  EXPECT_EQ(m->downloaded.size(), 5u);
  const ModelInfo* qwen = nullptr;
  for (const ModelInfo& i : m->downloaded) {
    if (i.key == "qwen/qwen3-4b") qwen = &i;
  }
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->display_name, "Qwen3 4B");  // v1's richer fields
  EXPECT_GT(qwen->size_bytes, 0);
  EXPECT_TRUE(qwen->trained_for_tool_use);
  const InstanceInfo* inst = FindLoaded(*m, "my-qwen");  // a custom identifier: only v1 has it
  ASSERT_NE(inst, nullptr);
  EXPECT_EQ(inst->model_key, "qwen/qwen3-4b");
  EXPECT_EQ(inst->context_length, 8192);
  EXPECT_EQ(inst->parallel_slots, 4);
  EXPECT_EQ(inst->type, ModelType::kLlm);
}

// Some host versions leave the default `parallel` out of an instance's config; the instance then
// has the SDK's default of 4 slots, and the driver says so instead of "unknown".
TEST_F(RestDriverTest, AnOmittedDefaultParallelIsTheSdkDefault) {
  ASSERT_TRUE(emu_->ApplySettings({{"omit_default_parallel", true}}).ok());
  ASSERT_TRUE(emu_->Load("qwen/qwen3-4b").ok());
  ASSERT_TRUE(emu_->Load("text-embedding-nomic-embed-text-v1.5").ok());
  auto m = driver_->ListModels({});
  ASSERT_TRUE(m.ok()) << m.status();
  const InstanceInfo* llm = FindLoaded(*m, "qwen/qwen3-4b");
  ASSERT_NE(llm, nullptr);
  EXPECT_EQ(llm->parallel_slots, 4);
  const InstanceInfo* embedding = FindLoaded(*m, "text-embedding-nomic-embed-text-v1.5");
  ASSERT_NE(embedding, nullptr);
  EXPECT_EQ(embedding->parallel_slots, 0);
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  auto loaded = driver_->Load({}, p, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->parallel_slots, 4);
}

TEST_F(RestDriverTest, LoadAndUnloadThroughV1) {
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  p.context_length = 2048;
  p.flash_attention = true;
  auto inst = driver_->Load({}, p, nullptr);
  ASSERT_TRUE(inst.ok()) << inst.status();
  EXPECT_EQ(inst->identifier, "google/gemma-3-1b");
  EXPECT_EQ(inst->model_key, "google/gemma-3-1b");
  EXPECT_EQ(inst->context_length, 2048);
  EXPECT_EQ(inst->type, ModelType::kLlm);
  auto second = driver_->Load({}, p, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->identifier, "google/gemma-3-1b:2");
  auto m = driver_->ListModels({});
  ASSERT_TRUE(m.ok());
  EXPECT_NE(FindLoaded(*m, "google/gemma-3-1b:2"), nullptr);

  ASSERT_TRUE(driver_->Unload({}, "google/gemma-3-1b:2").ok());
  m = driver_->ListModels({});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(FindLoaded(*m, "google/gemma-3-1b:2"), nullptr);
  EXPECT_NE(FindLoaded(*m, "google/gemma-3-1b"), nullptr);
  EXPECT_EQ(emu_->Stats()["unloads"].get<int>(), 1);
}

TEST_F(RestDriverTest, LoadErrors) {
  LoadParams unknown;
  unknown.model_key = "no/such-model";
  absl::Status s = driver_->Load({}, unknown, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("LM Studio at " + emu_->http_url()));
  EXPECT_THAT(s.message(), HasSubstr("no/such-model"));

  LoadParams named;
  named.model_key = "google/gemma-3-1b";
  named.identifier = "mine";
  EXPECT_EQ(driver_->Load({}, named, nullptr).status().code(), absl::StatusCode::kUnimplemented);

  emu_->FailNextLoads(1);
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  s = driver_->Load({}, p, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_THAT(s.message(), HasSubstr("loading google/gemma-3-1b failed"));
  EXPECT_EQ(emu_->Stats()["loads_started"].get<int>(), 1);  // a load is never retried

  EXPECT_EQ(driver_->Unload({}, "not-loaded").code(), absl::StatusCode::kNotFound);
}

TEST_F(RestDriverTest, LoadHonoursTheDeadline) {
  emu_->SetLoadTimeMultiplier(1000);  // ~ seconds
  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(200);
  ASSERT_TRUE(driver_->Probe(ctx).ok());  // also detects v1 before the clock matters
  EXPECT_EQ(driver_->Load(ctx, p, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(RestDriverTest, StreamedChatTakesLmStudioStats) {
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("google/gemma-3-1b", "Say hello."), obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  GenerateResult r = *obs->result();
  EXPECT_FALSE(r.content.empty());
  EXPECT_EQ(obs->content(), r.content);
  EXPECT_TRUE(r.stats.upstream_timings);
  EXPECT_TRUE(r.stats.tokens_per_second.has_value());
  EXPECT_TRUE(r.stats.time_to_first_token.has_value());
  EXPECT_EQ(r.stats.stop_reason, StopReason::kEos);
  EXPECT_GT(r.stats.completion_tokens, 0);
  EXPECT_EQ(emu_->Stats()["requests_by_interface"]["rest_v0"].get<int>(), 1);
}

TEST_F(RestDriverTest, TextCompletionToolsStructuredAndEmbeddings) {
  GenerateRequest text;
  text.model = "google/gemma-3-1b";
  text.chat = false;
  text.prompt = "Once upon a time";
  text.sampling.max_tokens = 4;
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, text, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_EQ(obs->result()->stats.stop_reason, StopReason::kMaxTokens);

  GenerateRequest tools = Chat("qwen/qwen3-4b", "Use get_time.");
  tools.tools = {{"get_time", "", R"({"type":"object","properties":{"tz":{"type":"string"}}})"}};
  tools.tool_choice = ToolChoice::kRequired;
  auto obs2 = std::make_shared<RecordingObserver>();
  driver_->Generate({}, tools, obs2);
  ASSERT_TRUE(obs2->Wait());
  ASSERT_TRUE(obs2->result().ok()) << obs2->result().status();
  ASSERT_EQ(obs2->result()->tool_calls.size(), 1u);
  EXPECT_EQ(obs2->result()->tool_calls[0].name, "get_time");
  EXPECT_EQ(obs2->result()->stats.stop_reason, StopReason::kToolCalls);

  GenerateRequest structured = Chat("google/gemma-3-1b", "A number please.");
  structured.json_schema = R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})";
  auto obs3 = std::make_shared<RecordingObserver>();
  driver_->Generate({}, structured, obs3);
  ASSERT_TRUE(obs3->Wait());
  ASSERT_TRUE(obs3->result().ok());
  EXPECT_THAT(obs3->result()->content, HasSubstr("\"n\""));

  auto e = driver_->Embed({}, "text-embedding-bge-small-en-v1.5", {"a", "b"});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->embeddings.size(), 2u);
}

TEST_F(RestDriverTest, CancelStopsTheUpstreamPrediction) {
  emu_->StallNextPrediction(2, -1);
  auto obs = std::make_shared<RecordingObserver>();
  auto handle = driver_->Generate({}, Chat("google/gemma-3-1b", "A long story."), obs);
  ASSERT_TRUE(obs->WaitForEvents(2));
  EXPECT_EQ(ActivePredictions(), 1);
  handle->Cancel();
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
  EXPECT_EQ(emu_->Stats()["predictions_cancelled"].get<int>(), 1);
}

TEST_F(RestDriverTest, StallHonoursTheDeadline) {
  emu_->StallNextPrediction(1, -1);
  auto obs = std::make_shared<RecordingObserver>();
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(300);
  driver_->Generate(ctx, Chat("google/gemma-3-1b", "A long story."), obs);
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
}

TEST_F(RestDriverTest, WrongTokenAndUnknownModel) {
  auto bad = MakeDriver(emu_->http_url(), "sk-lm-Wrong123:ABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(bad->ListModels({}).status().code(), absl::StatusCode::kUnauthenticated);
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  EXPECT_EQ(bad->Load({}, p, nullptr).status().code(), absl::StatusCode::kUnauthenticated);
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("no/such-model", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(obs->result().status().message(), HasSubstr("Invalid model identifier"));
}

TEST_F(RestDriverTest, ServerErrorBursts) {
  emu_->FailNextHttpRequests(2, 503);
  EXPECT_TRUE(driver_->ListModels({}).ok());  // GETs retried
  emu_->FailNextHttpRequests(1, 500);
  LoadParams p;
  p.model_key = "google/gemma-3-1b";
  absl::Status s = driver_->Load({}, p, nullptr).status();  // POST: not retried, reported
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(s.message(), HasSubstr("HTTP 500"));

  // A chat refused with 503 before anything streamed is retried (a prediction changes nothing).
  emu_->FailNextHttpRequests(2, 503);
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("google/gemma-3-1b", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_TRUE(obs->result().ok()) << obs->result().status();
}

// LM Studio 0.3.x: REST v0 only; unknown paths answer 200 {"error":"Unexpected endpoint..."}.
class OldHostTest : public ::testing::Test {
 protected:
  OldHostTest()
      : server_([this](const http::testing::TestRequest& r, http::testing::TestConnection& c) {
          if (r.path == "/api/v0/models") {
            c.Respond(200, "application/json", R"({"object":"list","data":[
              {"id":"qwen/qwen3-4b","type":"llm","state":"loaded","loaded_context_length":4096,
               "max_context_length":40960,"quantization":"Q4_K_M","compatibility_type":"gguf"},
              {"id":"google/gemma-3-1b","type":"llm","state":"loading"}]})");
            return;
          }
          if (r.path == "/api/v1/models") ++v1_probes_;
          c.Respond(200, "application/json",
                    R"({"error":"Unexpected endpoint or method. ()" + r.method + " " + r.path +
                        ")\"}");
        }) {}

  std::atomic<int> v1_probes_{0};
  http::testing::TestServer server_;
};

TEST_F(OldHostTest, ListsFromV0AndRefusesLoadsClearly) {
  auto driver = MakeDriver(server_.base_url(), "");
  auto m = driver->ListModels({});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->loaded.size(), 1u);
  EXPECT_EQ(m->loaded[0].identifier, "qwen/qwen3-4b");
  EXPECT_EQ(m->loaded[0].context_length, 4096);
  EXPECT_EQ(m->loading_keys, std::vector<std::string>{"google/gemma-3-1b"});
  EXPECT_EQ(m->downloaded.size(), 2u);

  LoadParams p;
  p.model_key = "qwen/qwen3-4b";
  absl::Status s = driver->Load({}, p, nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("older than 0.4"));
  EXPECT_THAT(s.message(), HasSubstr("sdk_ws or cli"));
  EXPECT_EQ(driver->Unload({}, "qwen/qwen3-4b").code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(v1_probes_.load(), 1);  // detected once, then cached
  EXPECT_TRUE(driver->Probe({}).ok());
  EXPECT_EQ(driver->ListModels({}).status().code(), absl::StatusCode::kOk);
  EXPECT_EQ(v1_probes_.load(), 1);
}

}  // namespace
}  // namespace lmgate::backends::rest
