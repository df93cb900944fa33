// The openai driver against the LM Studio host emulator (and, for JIT heuristics, pure data).
#include "backends/openai/openai_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "backends/http/json.h"
#include "backends/openai/register.h"
#include "tests/backends/http/driver_test_util.h"
#include "tests/emulator/emulator.h"

namespace lmgate::backends::openai {
namespace {

using ::testing::HasSubstr;
using testing::PollUntil;
using testing::RecordingObserver;
using Kind = GenerateEvent::Kind;

constexpr char kToken[] = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";

class OpenAiDriverTest : public ::testing::Test {
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
    driver_ = MakeDriver(kToken);
  }

  std::unique_ptr<OpenAiDriver> MakeDriver(const std::string& token,
                                           OpenAiDriver::JitMode jit = OpenAiDriver::JitMode::kUnknown,
                                           absl::Duration idle = absl::Seconds(120)) {
    OpenAiDriver::Options o;
    o.host.base_url = emu_->http_url() + "/v1";
    o.host.api_token = token;
    o.host.idle_timeout = idle;
    o.jit = jit;
    auto d = OpenAiDriver::Create(o);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }

  GenerateRequest Chat(const std::string& model, const std::string& text) {
    GenerateRequest r;
    r.model = model;
    r.messages = {{"system", "You are terse."}, {"user", text}};
    r.sampling.seed = 7;
    r.sampling.temperature = 0.2;
    return r;
  }

  int64_t ActivePredictions() { return emu_->Stats()["predictions_active"].get<int64_t>(); }

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<OpenAiDriver> driver_;
};

TEST_F(OpenAiDriverTest, KindCapabilitiesAndUnsupportedOperations) {
  EXPECT_EQ(driver_->kind(), DriverKind::kOpenAi);
  Capabilities c = driver_->capabilities();
  EXPECT_TRUE(c.list_models && c.chat && c.complete && c.embed && c.tool_calls &&
              c.structured_output);
  EXPECT_FALSE(c.load || c.unload || c.load_progress || c.tokenize || c.inference_stats);
  EXPECT_EQ(driver_->Load({}, LoadParams{"qwen/qwen3-4b"}, nullptr).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(driver_->Unload({}, "x").code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(driver_->Tokenize({}, "m", "t").status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(OpenAiDriverTest, ProbeAndRegistration) {
  EXPECT_TRUE(driver_->Probe({}).ok());
  BackendRegistry registry;
  ASSERT_TRUE(RegisterOpenAiDriver(registry).ok());
  EXPECT_EQ(RegisterOpenAiDriver(registry).code(), absl::StatusCode::kAlreadyExists);
  HostConfig config;
  config.base_url = emu_->http_url();
  config.api_token = kToken;
  auto d = registry.Create("openai", config);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->kind(), DriverKind::kOpenAi);
  EXPECT_TRUE((*d)->Probe({}).ok());
  config.base_url = "ftp://nope";
  EXPECT_EQ(registry.Create("openai", config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(OpenAiDriverTest, ListModelsWithJitOnListsDownloadedModels) {
  auto models = driver_->ListModels({});
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_EQ(models->downloaded.size(), 5u);
  EXPECT_FALSE(models->downloaded_known);  // heuristic: cannot be sure without the JIT setting
  EXPECT_FALSE(models->loaded_known);
  EXPECT_TRUE(models->loaded.empty());
  auto told = MakeDriver(kToken, OpenAiDriver::JitMode::kOn)->ListModels({});
  ASSERT_TRUE(told.ok());
  EXPECT_TRUE(told->downloaded_known);
}

TEST_F(OpenAiDriverTest, ListModelsWithJitOffListsInstances) {
  emulator::Settings s = emu_->settings();
  s.jit_enabled = false;
  emu_->SetSettings(s);
  ASSERT_TRUE(emu_->Load("qwen/qwen3-4b").ok());
  ASSERT_TRUE(emu_->Load("qwen/qwen3-4b").ok());  // "qwen/qwen3-4b:2"
  auto models = driver_->ListModels({});
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_FALSE(models->downloaded_known);
  EXPECT_TRUE(models->loaded_known);
  ASSERT_EQ(models->loaded.size(), 2u);
  for (const InstanceInfo& i : models->loaded) EXPECT_EQ(i.model_key, "qwen/qwen3-4b");
}

TEST(OpenAiModelsHeuristicTest, Classification) {
  using J = OpenAiDriver::JitMode;
  HostModels a = OpenAiDriver::ModelsFromIds({"a/b", "c"}, J::kUnknown);
  EXPECT_EQ(a.downloaded.size(), 2u);
  EXPECT_FALSE(a.downloaded_known);
  EXPECT_FALSE(a.loaded_known);
  HostModels b = OpenAiDriver::ModelsFromIds({"a/b", "a/b:2", "x:y"}, J::kUnknown);
  EXPECT_TRUE(b.loaded_known);
  ASSERT_EQ(b.loaded.size(), 3u);
  EXPECT_EQ(b.loaded[1].model_key, "a/b");
  EXPECT_EQ(b.loaded[2].model_key, "x:y");
  HostModels c = OpenAiDriver::ModelsFromIds({"a/b"}, J::kOff);
  EXPECT_EQ(c.loaded.size(), 1u);
  EXPECT_TRUE(c.downloaded.empty());
}

TEST_F(OpenAiDriverTest, StreamedChat) {
  auto obs = std::make_shared<RecordingObserver>();
  CallContext ctx;
  ctx.request_id = "req-1";
  driver_->Generate(ctx, Chat("google/gemma-3-1b", "Say hello."), obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  GenerateResult r = *obs->result();
  EXPECT_FALSE(r.content.empty());
  EXPECT_EQ(obs->content(), r.content);
  EXPECT_GT(obs->events().size(), 3u);  // streamed piecewise
  EXPECT_EQ(r.stats.stop_reason, StopReason::kEos);
  EXPECT_GT(r.stats.completion_tokens, 0);
  EXPECT_GT(r.stats.prompt_tokens, 0);
  EXPECT_FALSE(r.stats.upstream_timings);
  EXPECT_TRUE(r.stats.time_to_first_token.has_value());
  EXPECT_EQ(obs->complete_calls(), 1);
  EXPECT_EQ(obs->events_after_complete(), 0);
}

TEST_F(OpenAiDriverTest, MaxTokensAndTextCompletion) {
  GenerateRequest r = Chat("google/gemma-3-1b", "Tell me a long story.");
  r.sampling.max_tokens = 3;
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, r, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_EQ(obs->result()->stats.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(obs->result()->stats.completion_tokens, 3);

  GenerateRequest text;
  text.model = "google/gemma-3-1b";
  text.chat = false;
  text.prompt = "Once upon a time";
  text.sampling.max_tokens = 8;
  auto obs2 = std::make_shared<RecordingObserver>();
  driver_->Generate({}, text, obs2);
  ASSERT_TRUE(obs2->Wait());
  ASSERT_TRUE(obs2->result().ok()) << obs2->result().status();
  EXPECT_FALSE(obs2->result()->content.empty());
}

TEST_F(OpenAiDriverTest, ToolCallsAreStreamedAndAssembled) {
  GenerateRequest r = Chat("qwen/qwen3-4b", "What is the weather in Paris? Use get_weather.");
  r.tools = {{"get_weather", "Weather by city",
              R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"}};
  r.tool_choice = ToolChoice::kRequired;
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, r, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  const GenerateResult res = *obs->result();
  ASSERT_EQ(res.tool_calls.size(), 1u);
  EXPECT_EQ(res.tool_calls[0].name, "get_weather");
  EXPECT_FALSE(res.tool_calls[0].id.empty());
  auto args = http::ParseJson(res.tool_calls[0].arguments, "arguments");
  ASSERT_TRUE(args.ok()) << res.tool_calls[0].arguments;
  EXPECT_TRUE((*args)["city"].is_string()) << res.tool_calls[0].arguments;
  EXPECT_EQ(res.stats.stop_reason, StopReason::kToolCalls);
  std::string streamed_args;
  bool named = false;
  for (const GenerateEvent& e : obs->events()) {
    if (e.kind != Kind::kToolCallDelta) continue;
    EXPECT_EQ(e.tool_index, 0);
    named = named || e.tool_name == "get_weather";
    streamed_args += e.text;
  }
  EXPECT_TRUE(named);
  EXPECT_EQ(streamed_args, res.tool_calls[0].arguments);
}

TEST_F(OpenAiDriverTest, StructuredOutputFollowsTheSchema) {
  GenerateRequest r = Chat("google/gemma-3-1b", "Give me a person.");
  r.json_schema = R"({"type":"object","properties":{"name":{"type":"string"},
                      "age":{"type":"integer"}},"required":["name","age"]})";
  r.schema_name = "person";
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, r, obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  auto json = http::ParseJson(obs->result()->content, "content");
  ASSERT_TRUE(json.ok()) << obs->result()->content;
  EXPECT_TRUE((*json)["name"].is_string());
  EXPECT_TRUE((*json)["age"].is_number_integer());
}

TEST_F(OpenAiDriverTest, ReasoningDeltasBecomeReasoningEvents) {
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("qwen/qwen3-4b-thinking-2507", "Think, then answer."), obs);
  ASSERT_TRUE(obs->Wait());
  ASSERT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_FALSE(obs->result()->reasoning.empty());
  EXPECT_EQ(obs->reasoning(), obs->result()->reasoning);
  EXPECT_FALSE(obs->result()->content.empty());
  EXPECT_EQ(obs->events().front().kind, Kind::kReasoning);
}

TEST_F(OpenAiDriverTest, EmbedsABatchInInputOrder) {
  auto r = driver_->Embed({}, "text-embedding-nomic-embed-text-v1.5", {"alpha", "beta", "alpha"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->embeddings.size(), 3u);
  EXPECT_EQ(r->embeddings[0].size(), 768u);
  EXPECT_EQ(r->embeddings[0], r->embeddings[2]);
  EXPECT_NE(r->embeddings[0], r->embeddings[1]);
  EXPECT_GT(r->prompt_tokens, 0);
  EXPECT_EQ(emu_->Stats()["requests_by_interface"]["openai"].get<int>(), 1);  // one call
}

TEST_F(OpenAiDriverTest, UnknownModelIsNotFoundWithLmStudiosMessage) {
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("no/such-model", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(obs->result().status().message(),
              HasSubstr("LM Studio at " + emu_->http_url() + ": Invalid model identifier "
                        "\"no/such-model\""));
  EXPECT_EQ(driver_->Embed({}, "no/such-embedder", {"x"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(OpenAiDriverTest, WrongTokenIsUnauthenticated) {
  auto bad = MakeDriver("sk-lm-Wrong123:ABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(bad->ListModels({}).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(bad->Probe({}).code(), absl::StatusCode::kUnauthenticated);
  auto obs = std::make_shared<RecordingObserver>();
  bad->Generate({}, Chat("google/gemma-3-1b", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(obs->result().status().message(), HasSubstr("token is invalid"));
  EXPECT_EQ(MakeDriver("")->ListModels({}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(OpenAiDriverTest, CancelStopsTheUpstreamPrediction) {
  emu_->StallNextPrediction(/*after_fragments=*/2, /*stall_ms=*/-1);
  auto obs = std::make_shared<RecordingObserver>();
  auto handle = driver_->Generate({}, Chat("google/gemma-3-1b", "Tell me a story."), obs);
  ASSERT_TRUE(obs->WaitForEvents(2));
  EXPECT_EQ(ActivePredictions(), 1);
  absl::Time start = absl::Now();
  handle->Cancel();
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
  handle->Cancel();  // idempotent after completion
  EXPECT_EQ(obs->complete_calls(), 1);
}

TEST_F(OpenAiDriverTest, CancelTokenStopsTheUpstreamPrediction) {
  emu_->StallNextPrediction(2, -1);
  auto obs = std::make_shared<RecordingObserver>();
  CallContext ctx;
  ctx.cancel = std::make_shared<CancelToken>();
  auto handle = driver_->Generate(ctx, Chat("google/gemma-3-1b", "Tell me a story."), obs);
  ASSERT_TRUE(obs->WaitForEvents(2));
  ctx.cancel->Cancel();
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
}

TEST_F(OpenAiDriverTest, StallHonoursTheDeadline) {
  emu_->StallNextPrediction(2, -1);
  auto obs = std::make_shared<RecordingObserver>();
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(400);
  driver_->Generate(ctx, Chat("google/gemma-3-1b", "Tell me a story."), obs);
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(obs->content().empty());
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
}

TEST_F(OpenAiDriverTest, StallBeyondTheIdleTimeoutIsUnavailable) {
  auto impatient = MakeDriver(kToken, OpenAiDriver::JitMode::kUnknown, absl::Milliseconds(300));
  emu_->StallNextPrediction(2, -1);
  auto obs = std::make_shared<RecordingObserver>();
  impatient->Generate({}, Chat("google/gemma-3-1b", "Tell me a story."), obs);
  ASSERT_TRUE(obs->Wait(absl::Seconds(5)));
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(obs->result().status().message(), HasSubstr("sent nothing"));
  EXPECT_TRUE(PollUntil([&] { return ActivePredictions() == 0; }, absl::Seconds(2)));
}

TEST_F(OpenAiDriverTest, ConnectionDroppedMidStreamIsUnavailable) {
  emu_->DropAfterFragments(3);
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("google/gemma-3-1b", "Tell me a story."), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnavailable)
      << obs->result().status();
  EXPECT_EQ(obs->complete_calls(), 1);
}

TEST_F(OpenAiDriverTest, ServerErrorBurstsBeforeAnyByteAreRetried) {
  emu_->FailNextHttpRequests(2, 503);
  auto models = driver_->ListModels({});  // GET: two retries absorb the burst
  EXPECT_TRUE(models.ok()) << models.status();
  emu_->FailNextHttpRequests(2, 503);
  EXPECT_TRUE(driver_->Embed({}, "text-embedding-nomic-embed-text-v1.5", {"x"}).ok());

  // A prediction refused with 503 before anything streamed is retried like Embed.
  emu_->FailNextHttpRequests(2, 503);
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("google/gemma-3-1b", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_TRUE(obs->result().ok()) << obs->result().status();
  EXPECT_EQ(emu_->Stats()["predictions_started"].get<int>(), 1);

  emu_->FailNextHttpRequests(3, 503);  // more than max_retries: a clear failure
  EXPECT_EQ(driver_->ListModels({}).status().code(), absl::StatusCode::kUnavailable);
  emu_->FailNextHttpRequests(3, 503);
  auto failed = std::make_shared<RecordingObserver>();
  driver_->Generate({}, Chat("google/gemma-3-1b", "hi"), failed);
  ASSERT_TRUE(failed->Wait());
  EXPECT_EQ(failed->result().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(failed->result().status().message(), HasSubstr("HTTP 503"));
  EXPECT_EQ(emu_->Stats()["predictions_started"].get<int>(), 1);
}

TEST_F(OpenAiDriverTest, RefusedConnectionsAreUnavailable) {
  OpenAiDriver::Options o;
  o.host.base_url = emu_->http_url();
  o.host.api_token = kToken;
  auto port = emu_->port();
  emu_.reset();  // nothing listens any more
  auto d = OpenAiDriver::Create(o);
  ASSERT_TRUE(d.ok());
  absl::Status s = (*d)->Probe({});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(port)));
  auto obs = std::make_shared<RecordingObserver>();
  (*d)->Generate({}, Chat("m", "hi"), obs);
  ASSERT_TRUE(obs->Wait());
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(OpenAiDriverTest, InvalidRequestFailsInsideGenerate) {
  GenerateRequest r = Chat("google/gemma-3-1b", "hi");
  r.json_schema = "{oops";
  auto obs = std::make_shared<RecordingObserver>();
  driver_->Generate({}, r, obs);
  EXPECT_EQ(obs->complete_calls(), 1);  // synchronously
  EXPECT_EQ(obs->result().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lmgate::backends::openai
