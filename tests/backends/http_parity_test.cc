// The two HTTP drivers against one emulator: the same request gives the same text, tool calls and
// embeddings through the OpenAI-compatible API and through REST v0.
#include <gtest/gtest.h>

#include "backends/openai/openai_driver.h"
#include "backends/rest/rest_driver.h"
#include "tests/backends/http/driver_test_util.h"
#include "tests/emulator/emulator.h"

namespace lmgate::backends {
namespace {

using testing::RecordingObserver;

class HttpParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emulator::Options options;
    options.settings.ttft_ms = 1;
    options.settings.tokens_per_second = 0;
    options.settings.load_ms_per_gb = 1;
    auto emu = emulator::Emulator::Create(options);
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = std::move(*emu);
    HostConfig host;
    host.base_url = emu_->http_url();
    auto o = openai::OpenAiDriver::Create({host});
    auto r = rest::RestDriver::Create({host});
    ASSERT_TRUE(o.ok() && r.ok());
    openai_ = std::move(*o);
    rest_ = std::move(*r);
  }

  GenerateResult Run(Driver& d, const GenerateRequest& req) {
    auto obs = std::make_shared<RecordingObserver>();
    d.Generate({}, req, obs);
    EXPECT_TRUE(obs->Wait());
    EXPECT_TRUE(obs->result().ok()) << obs->result().status();
    return obs->result().value_or(GenerateResult{});
  }

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<Driver> openai_, rest_;
};

TEST_F(HttpParityTest, SameChatTextThroughBothDrivers) {
  for (const char* model : {"google/gemma-3-1b", "qwen/qwen3-4b-thinking-2507"}) {
    GenerateRequest req;
    req.model = model;
    req.messages = {{"system", "You are terse."}, {"user", "Describe the sea."}};
    req.sampling.seed = 42;
    req.sampling.max_tokens = 40;
    GenerateResult a = Run(*openai_, req);
    GenerateResult b = Run(*rest_, req);
    EXPECT_FALSE(a.content.empty()) << model;
    EXPECT_EQ(a.content, b.content) << model;
    EXPECT_EQ(a.reasoning, b.reasoning) << model;
    EXPECT_EQ(a.stats.completion_tokens, b.stats.completion_tokens) << model;
    EXPECT_EQ(a.stats.stop_reason, b.stats.stop_reason) << model;
    EXPECT_FALSE(a.stats.upstream_timings);
    EXPECT_TRUE(b.stats.upstream_timings);
  }
}

TEST_F(HttpParityTest, SameCompletionToolCallsAndEmbeddings) {
  GenerateRequest text;
  text.model = "google/gemma-3-1b";
  text.chat = false;
  text.prompt = "The lighthouse keeper";
  text.sampling.seed = 3;
  EXPECT_EQ(Run(*openai_, text).content, Run(*rest_, text).content);

  GenerateRequest tools;
  tools.model = "qwen/qwen3-4b";
  tools.messages = {{"user", "Call lookup for 'sea'."}};
  tools.tools = {{"lookup", "Looks a word up",
                  R"({"type":"object","properties":{"word":{"type":"string"}}})"}};
  tools.tool_choice = ToolChoice::kAuto;
  tools.sampling.seed = 5;
  GenerateResult a = Run(*openai_, tools);
  GenerateResult b = Run(*rest_, tools);
  ASSERT_EQ(a.tool_calls.size(), 1u);
  ASSERT_EQ(b.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].name, b.tool_calls[0].name);
  EXPECT_EQ(a.tool_calls[0].arguments, b.tool_calls[0].arguments);

  auto ea = openai_->Embed({}, "text-embedding-nomic-embed-text-v1.5", {"sea", "sky"});
  auto eb = rest_->Embed({}, "text-embedding-nomic-embed-text-v1.5", {"sea", "sky"});
  ASSERT_TRUE(ea.ok() && eb.ok());
  EXPECT_EQ(ea->embeddings, eb->embeddings);
}

TEST_F(HttpParityTest, ManyConcurrentStreamsOnOneDriver) {
  constexpr int kStreams = 64;
  std::vector<std::shared_ptr<RecordingObserver>> observers;
  std::vector<std::unique_ptr<GenerateHandle>> handles;
  for (int i = 0; i < kStreams; ++i) {
    GenerateRequest req;
    req.model = "google/gemma-3-1b";
    req.messages = {{"user", "Hello number " + std::to_string(i)}};
    req.sampling.max_tokens = 8;
    observers.push_back(std::make_shared<RecordingObserver>());
    handles.push_back((i % 2 ? openai_ : rest_)->Generate({}, req, observers.back()));
  }
  for (auto& obs : observers) {
    ASSERT_TRUE(obs->Wait(absl::Seconds(60)));
    ASSERT_TRUE(obs->result().ok()) << obs->result().status();
    EXPECT_EQ(obs->result()->stats.completion_tokens, 8);
  }
}

}  // namespace
}  // namespace lmgate::backends
