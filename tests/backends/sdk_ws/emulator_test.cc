// The sdk_ws driver against the LM Studio host emulator (//tests/emulator), in process on
// 127.0.0.1 port 0: every operation, one connection for many concurrent predictions, repeated
// load/chat/unload cycles, cancel, socket loss, authentication, unknown models and deadlines.
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/backends/sdk_ws/test_util.h"
#include "tests/emulator/emulator.h"

namespace lmgate::backends::sdk_ws::testing {
namespace {

using nlohmann::json;

constexpr char kLlm[] = "google/gemma-3-1b";
constexpr char kThinking[] = "qwen/qwen3-4b-thinking-2507";
constexpr char kEmbedding[] = "text-embedding-nomic-embed-text-v1.5";
constexpr char kToken[] = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";

std::unique_ptr<emulator::Emulator> StartEmulator(std::string api_token = "") {
  emulator::Options o;
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;  // as fast as possible unless a test slows it down
  o.settings.load_ms_per_gb = 4;
  o.api_token = std::move(api_token);
  auto e = emulator::Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

int64_t Stat(const emulator::Emulator& e, const char* key) { return e.Stats()[key].get<int64_t>(); }

// Waits (bounded, yielding) until the emulator's gauge reaches `value`; false on timeout.
bool StatReaches(const emulator::Emulator& e, const char* key, int64_t value, absl::Duration within) {
  absl::Time deadline = absl::Now() + within;
  while (Stat(e, key) != value) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

LoadParams Params(const std::string& key, const std::string& identifier = "") {
  LoadParams p;
  p.model_key = key;
  p.identifier = identifier;
  return p;
}

class EmulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_ = StartEmulator();
    ASSERT_NE(emu_, nullptr);
    driver_ = MakeDriver(emu_->http_url());
    ASSERT_NE(driver_, nullptr);
  }

  absl::StatusOr<GenerateResult> Run(const GenerateRequest& req, CallContext ctx = Ctx()) {
    auto obs = std::make_shared<Collector>();
    driver_->Generate(ctx, req, obs);
    return obs->Wait();
  }

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<SdkWsDriver> driver_;
};

TEST_F(EmulatorTest, ProbeAndListModels) {
  EXPECT_TRUE(driver_->Probe(Ctx()).ok());
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  ASSERT_TRUE(emu_->Load(kEmbedding).ok());
  absl::StatusOr<HostModels> models = driver_->ListModels(Ctx());
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_GE(models->downloaded.size(), 5u);
  std::set<std::string> keys;
  for (const ModelInfo& m : models->downloaded) keys.insert(m.key);
  EXPECT_TRUE(keys.count(kThinking));
  ASSERT_EQ(models->loaded.size(), 2u);
  for (const InstanceInfo& i : models->loaded) {
    EXPECT_FALSE(i.instance_reference.empty());
    EXPECT_EQ(i.type, i.identifier == "g" ? ModelType::kLlm : ModelType::kEmbedding);
  }
}

TEST_F(EmulatorTest, LoadWithProgressChatAndUnload) {
  LoadParams p = Params(kLlm, "my-gemma");
  p.context_length = 8192;
  p.parallel_slots = 2;
  p.ttl = absl::Minutes(5);
  std::vector<double> progress;
  absl::StatusOr<InstanceInfo> info =
      driver_->Load(Ctx(), p, [&](double v) { progress.push_back(v); });
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->identifier, "my-gemma");
  EXPECT_EQ(info->context_length, 8192);
  EXPECT_EQ(info->ttl, absl::Minutes(5));
  EXPECT_EQ(info->parallel_slots, 2);
  EXPECT_EQ(emu_->Stats()["loaded_instances"][0]["parallel"], 2);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 1.0);

  GenerateRequest chat = Chat("my-gemma", "Say hello.");
  chat.instance_reference = info->instance_reference;
  chat.sampling.max_tokens = 100;
  absl::StatusOr<GenerateResult> r = Run(chat);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->content.empty());
  EXPECT_TRUE(r->stats.upstream_timings);
  EXPECT_GT(r->stats.completion_tokens, 0);
  EXPECT_GT(r->stats.prompt_tokens, 0);
  EXPECT_EQ(r->stats.stop_reason, StopReason::kEos);

  // The same identifier again is refused by the host.
  EXPECT_EQ(driver_->Load(Ctx(), Params(kLlm, "my-gemma"), nullptr).status().code(),
            absl::StatusCode::kAlreadyExists);

  EXPECT_TRUE(driver_->Unload(Ctx(), "my-gemma").ok());
  EXPECT_EQ(driver_->Unload(Ctx(), "my-gemma").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Stat(*emu_, "loads_started"), 1);
  EXPECT_EQ(Stat(*emu_, "unloads"), 1);
}

// The SDK's instance info has no slot count: the driver reads the host's load config, like the
// SDK's getLoadConfig(), and a config without numParallelSessions means the SDK default of 4.
TEST_F(EmulatorTest, LoadReportsTheHostsSlotCountAndTheSdkDefaultWhenOmitted) {
  ASSERT_TRUE(emu_->ApplySettings({{"default_parallel", 3}}).ok());
  absl::StatusOr<InstanceInfo> reported = driver_->Load(Ctx(), Params(kLlm, "three"), nullptr);
  ASSERT_TRUE(reported.ok()) << reported.status();
  EXPECT_EQ(reported->parallel_slots, 3);
  ASSERT_TRUE(emu_->ApplySettings({{"default_parallel", 4}, {"omit_default_parallel", true}}).ok());
  absl::StatusOr<InstanceInfo> omitted = driver_->Load(Ctx(), Params(kLlm, "four"), nullptr);
  ASSERT_TRUE(omitted.ok()) << omitted.status();
  EXPECT_EQ(omitted->parallel_slots, 4);
  absl::StatusOr<InstanceInfo> embedding = driver_->Load(Ctx(), Params(kEmbedding), nullptr);
  ASSERT_TRUE(embedding.ok()) << embedding.status();
  EXPECT_EQ(embedding->parallel_slots, 0);
  // Listings read it too (instances loaded outside lmgate included).
  ASSERT_TRUE(emu_->Load(kLlm, "outside", std::nullopt, 0, /*parallel=*/2).ok());
  absl::StatusOr<HostModels> models = driver_->ListModels(Ctx());
  ASSERT_TRUE(models.ok()) << models.status();
  std::map<std::string, int> slots;
  for (const InstanceInfo& i : models->loaded) slots[i.identifier] = i.parallel_slots;
  EXPECT_EQ(slots, (std::map<std::string, int>{
                       {"three", 3}, {"four", 4}, {"outside", 2}, {kEmbedding, 0}}));
}

TEST_F(EmulatorTest, RawCompletionMaxTokensAndReasoning) {
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  GenerateRequest complete;
  complete.chat = false;
  complete.model = "g";
  complete.prompt = "Once upon a time";
  complete.sampling.max_tokens = 5;
  absl::StatusOr<GenerateResult> r = Run(complete);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stats.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(r->stats.completion_tokens, 5);

  ASSERT_TRUE(emu_->Load(kThinking, "t").ok());
  r = Run(Chat("t", "Why is the sky blue?"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->reasoning.empty());
  EXPECT_FALSE(r->content.empty());
  EXPECT_EQ(r->content.find("<think>"), std::string::npos);
}

TEST_F(EmulatorTest, ToolCallsAndStructuredOutput) {
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  GenerateRequest req = Chat("g", "What is the weather in Oslo? Use get_weather.");
  req.tools = {{"get_weather", "Weather now",
                R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"}};
  req.tool_choice = ToolChoice::kRequired;
  auto obs = std::make_shared<Collector>();
  driver_->Generate(Ctx(), req, obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].name, "get_weather");
  EXPECT_TRUE(json::parse(r->tool_calls[0].arguments).contains("city"));
  EXPECT_EQ(r->stats.stop_reason, StopReason::kToolCalls);
  std::string streamed_args;
  for (const GenerateEvent& e : obs->events()) {
    if (e.kind == GenerateEvent::Kind::kToolCallDelta) streamed_args += e.text;
  }
  EXPECT_EQ(json::parse(streamed_args), json::parse(r->tool_calls[0].arguments));

  // The tool result goes back as history; the model answers in text.
  Message call;
  call.role = "assistant";
  call.tool_calls = r->tool_calls;
  Message result;
  result.role = "tool";
  result.tool_call_id = r->tool_calls[0].id;
  result.content = "-3 C, snow";
  req.messages.push_back(call);
  req.messages.push_back(result);
  req.tool_choice = ToolChoice::kAuto;
  absl::StatusOr<GenerateResult> answer = Run(req);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(answer->tool_calls.empty());

  GenerateRequest structured = Chat("g", "Give me a person.");
  structured.json_schema =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]})";
  r = Run(structured);
  ASSERT_TRUE(r.ok()) << r.status();
  json doc = json::parse(r->content, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r->content;
  EXPECT_TRUE(doc["age"].is_number_integer());
}

TEST_F(EmulatorTest, ManyConcurrentPredictionsOverOneConnection) {
  ASSERT_TRUE(emu_->Load(kLlm, "g", std::nullopt, 0, /*parallel=*/8).ok());
  constexpr int kN = 40;
  std::vector<std::shared_ptr<Collector>> observers;
  for (int i = 0; i < kN; ++i) {
    observers.push_back(std::make_shared<Collector>());
    GenerateRequest req = Chat("g", absl::StrCat("Question number ", i));
    req.sampling.max_tokens = 20;
    driver_->Generate(Ctx(absl::Seconds(60)), req, observers.back());
  }
  for (auto& obs : observers) {
    absl::StatusOr<GenerateResult> r = obs->Wait(absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(obs->content(), r->content);  // events and result agree, nothing duplicated
    EXPECT_EQ(obs->completions(), 1);
  }
  EXPECT_EQ(Stat(*emu_, "ws_connections_total"), 1);
  EXPECT_EQ(Stat(*emu_, "predictions_finished"), kN);
}

TEST_F(EmulatorTest, LoadChatUnloadTenTimesOverOneConnection) {
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<InstanceInfo> info = driver_->Load(Ctx(), Params(kLlm, "cycle"), nullptr);
    ASSERT_TRUE(info.ok()) << i << ": " << info.status();
    GenerateRequest chat = Chat("cycle", "hi");
    chat.instance_reference = info->instance_reference;
    absl::StatusOr<GenerateResult> r = Run(chat);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ASSERT_TRUE(driver_->Unload(Ctx(), "cycle").ok()) << i;
  }
  // /system once (the model's type), then everything on /llm.
  EXPECT_EQ(Stat(*emu_, "ws_connections_total"), 2);
  EXPECT_EQ(driver_->connection_stats().connects_started, 2);
  EXPECT_EQ(Stat(*emu_, "loads_finished"), 10);
  EXPECT_EQ(Stat(*emu_, "unloads"), 10);
}

TEST_F(EmulatorTest, CancelStopsThePredictionUpstreamPromptly) {
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  emu_->StallNextPrediction(/*after_fragments=*/2, /*stall_ms=*/-1);
  auto obs = std::make_shared<Collector>();
  auto handle = driver_->Generate(Ctx(), Chat("g", "Tell me a long story."), obs);
  ASSERT_TRUE(obs->WaitForEvents(3));  // prompt progress + 2 fragments
  EXPECT_EQ(Stat(*emu_, "predictions_active"), 1);
  absl::Time cancelled_at = absl::Now();
  handle->Cancel();
  absl::StatusOr<GenerateResult> r = obs->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_TRUE(StatReaches(*emu_, "predictions_active", 0, absl::Milliseconds(100)));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(150));
  EXPECT_EQ(Stat(*emu_, "predictions_cancelled"), 1);
}

TEST_F(EmulatorTest, DeadlineCancelsThePredictionUpstream) {
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  emu_->StallNextPrediction(1, -1);
  absl::StatusOr<GenerateResult> r = Run(Chat("g", "x"), Ctx(absl::Milliseconds(300)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(StatReaches(*emu_, "predictions_active", 0, absl::Milliseconds(100)));
  EXPECT_EQ(Stat(*emu_, "predictions_cancelled"), 1);
}

TEST_F(EmulatorTest, DroppedSocketMidStreamIsUnavailableThenReconnects) {
  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  emu_->DropAfterFragments(3);
  auto obs = std::make_shared<Collector>();
  driver_->Generate(Ctx(), Chat("g", "Tell me a story."), obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(obs->completions(), 1);
  EXPECT_EQ(obs->events_after_complete(), 0);

  r = Run(Chat("g", "again"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Stat(*emu_, "ws_connections_total"), 2);
  EXPECT_EQ(Stat(*emu_, "predictions_started"), 2);  // never replayed
}

TEST_F(EmulatorTest, LoadCancelAndDeadline) {
  emu_->SetLoadTimeMultiplier(200);  // a few seconds per load
  CallContext ctx = Ctx();
  ctx.cancel = std::make_shared<CancelToken>();
  absl::StatusOr<InstanceInfo> info = driver_->Load(ctx, Params(kLlm, "slow"), [&](double p) {
    if (p > 0) ctx.cancel->Cancel();
  });
  EXPECT_EQ(info.status().code(), absl::StatusCode::kCancelled) << info.status();
  EXPECT_TRUE(StatReaches(*emu_, "loads_cancelled", 1, absl::Seconds(2)));

  info = driver_->Load(Ctx(absl::Milliseconds(200)), Params(kLlm, "slow2"), nullptr);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kDeadlineExceeded) << info.status();
  EXPECT_TRUE(StatReaches(*emu_, "loads_cancelled", 2, absl::Seconds(2)));
  absl::StatusOr<HostModels> models = driver_->ListModels(Ctx());
  ASSERT_TRUE(models.ok());
  EXPECT_TRUE(models->loaded.empty());
}

TEST_F(EmulatorTest, FailedLoadIsReported) {
  emu_->FailNextLoads(1);
  absl::StatusOr<InstanceInfo> info = driver_->Load(Ctx(), Params(kLlm), nullptr);
  EXPECT_FALSE(info.ok());
  EXPECT_NE(info.status().code(), absl::StatusCode::kUnavailable) << info.status();
  EXPECT_TRUE(driver_->Load(Ctx(), Params(kLlm), nullptr).ok());
}

TEST_F(EmulatorTest, UnknownModelsAreNotFound) {
  EXPECT_EQ(Run(Chat("no/such-model", "x")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(driver_->Load(Ctx(), Params("no/such-model"), nullptr).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(driver_->Tokenize(Ctx(), "no/such-model", "x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(driver_->Embed(Ctx(), "no/such-model", {"x"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(driver_->Unload(Ctx(), "no/such-instance").code(), absl::StatusCode::kNotFound);
}

TEST_F(EmulatorTest, EmbedPipelinedAndTokenizer) {
  ASSERT_TRUE(driver_->Load(Ctx(), Params(kEmbedding, "emb"), nullptr).ok());
  std::vector<std::string> inputs;
  for (int i = 0; i < 16; ++i) inputs.push_back(absl::StrCat("sentence ", i % 8));
  absl::StatusOr<EmbedResult> r = driver_->Embed(Ctx(), "emb", inputs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->embeddings.size(), 16u);
  EXPECT_GT(r->embeddings[0].size(), 0u);
  EXPECT_EQ(r->embeddings[3], r->embeddings[11]);  // same text, same vector, right order
  EXPECT_NE(r->embeddings[3], r->embeddings[4]);
  EXPECT_EQ(Stat(*emu_, "embeddings"), 16);

  ASSERT_TRUE(emu_->Load(kLlm, "g").ok());
  absl::StatusOr<std::vector<int>> tokens = driver_->Tokenize(Ctx(), "g", "Hello there, world!");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  absl::StatusOr<int> count = driver_->CountTokens(Ctx(), "g", "Hello there, world!");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(static_cast<int>(tokens->size()), *count);
  EXPECT_GT(*count, 0);
  // The embedding instance's tokenizer is found on the embedding namespace.
  EXPECT_TRUE(driver_->CountTokens(Ctx(), "emb", "abc").ok());
}

TEST(EmulatorAuth, TokenAcceptedWrongTokenUnauthenticated) {
  auto emu = StartEmulator(kToken);
  ASSERT_NE(emu, nullptr);
  auto good = MakeDriver(emu->http_url(), kToken);
  EXPECT_TRUE(good->ListModels(Ctx()).ok());
  const int64_t good_connections = Stat(*emu, "ws_connections_total");

  SdkWsDriver::Options options;
  options.initial_backoff = absl::Seconds(30);
  auto bad = MakeDriver(emu->http_url(), "sk-lm-Wrong123:ABCDEFGHIJKLMNOPQRST", options);
  absl::StatusOr<HostModels> r = bad->ListModels(Ctx());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_EQ(bad->ListModels(Ctx()).status().code(), absl::StatusCode::kUnauthenticated);
  // No reconnect storm: at most one attempt per namespace (system, llm, embedding) over both
  // calls. The listing opens them in parallel and answers on the first rejection, so the others
  // may still be arriving: wait for them all to close, then count.
  ASSERT_TRUE(StatReaches(*emu, "ws_connections_open", good_connections, absl::Seconds(10)));
  EXPECT_LE(Stat(*emu, "ws_connections_total") - good_connections, 3);

  auto guest = MakeDriver(emu->http_url());
  EXPECT_EQ(guest->Probe(Ctx()).code(), absl::StatusCode::kUnauthenticated);
}

TEST(EmulatorRestart, RefusedConnectionsAreUnavailableThenRecover) {
  auto emu = StartEmulator();
  ASSERT_NE(emu, nullptr);
  SdkWsDriver::Options options;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(1);
  options.probe_cache = absl::ZeroDuration();
  auto driver = MakeDriver(emu->http_url(), "", options);
  ASSERT_TRUE(driver->Probe(Ctx()).ok());
  emu->RefuseConnections(300, /*drop_existing_connections=*/true);
  absl::Status status;
  // The dropped socket fails; until the listener is back, attempts are refused.
  for (int i = 0; i < 1000 && status.ok(); ++i) status = driver->Probe(Ctx());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!driver->Probe(Ctx()).ok() && absl::Now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(driver->Probe(Ctx()).ok());
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws::testing
