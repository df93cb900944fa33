// Generate() against the scripted FakeHost: multiplexing, cancel, deadlines, socket loss.
#include <atomic>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/backends/sdk_ws/fake_host.h"
#include "tests/backends/sdk_ws/test_util.h"

namespace lmgate::backends::sdk_ws::testing {
namespace {

bool IsCreate(const Json& f, const char* endpoint) {
  return f["type"] == "channelCreate" && f["endpoint"] == endpoint;
}
bool IsCancel(const Json& f) {
  return f["type"] == "channelSend" && f["message"]["type"] == "cancel";
}
std::string UserText(const Json& create) {
  return create["creationParameter"]["history"]["messages"][0]["content"][0]["text"];
}

// Echoes the user's text back as three fragments, then success + close.
void EchoScript(const std::shared_ptr<FakeSession>& s, const Json& f) {
  if (IsCreate(f, "predict")) {
    std::string text = UserText(f);
    s->Send(ChannelSend(f, {{"type", "promptProcessingProgress"}, {"progress", 1.0},
                            {"details", Json::object()}}));
    s->Send(ChannelSend(f, Fragment("<think>", "reasoningStartTag")));
    s->Send(ChannelSend(f, Fragment("mull", "reasoning")));
    s->Send(ChannelSend(f, Fragment("</think>", "reasoningEndTag")));
    for (const char* piece : {"echo:", " ", ""}) s->Send(ChannelSend(f, Fragment(piece)));
    s->Send(ChannelSend(f, Fragment(text)));
    s->Send(ChannelSend(f, PredictSuccess("eosFound", 3)));
    s->Send(ChannelClose(f));
  } else if (IsCreate(f, "completeRawText")) {
    s->Send(ChannelSend(f, Fragment(f["creationParameter"]["rawPrompt"].get<std::string>() + "!")));
    s->Send(ChannelSend(f, PredictSuccess("maxPredictedTokensReached")));
    s->Send(ChannelClose(f));
  }
}

// Streams one fragment and then waits; answers a cancel like LM Studio (success/userStopped).
void StallScript(const std::shared_ptr<FakeSession>& s, const Json& f) {
  if (IsCreate(f, "predict")) {
    s->Send(ChannelSend(f, Fragment("Hello ")));
  } else if (IsCancel(f)) {
    s->Send(ChannelSend(f, PredictSuccess("userStopped")));
    s->Send(ChannelClose(f));
  }
}

TEST(Generate, ChatStreamsEventsAndStats) {
  FakeHost host(EchoScript);
  auto driver = MakeDriver(host.base_url());
  ASSERT_NE(driver, nullptr);
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("qwen", "hi"), obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "echo: hi");
  EXPECT_EQ(r->reasoning, "mull");
  EXPECT_EQ(r->stats.stop_reason, StopReason::kEos);
  EXPECT_EQ(r->stats.completion_tokens, 3);
  EXPECT_TRUE(r->stats.upstream_timings);
  std::vector<GenerateEvent> ev = obs->events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].kind, GenerateEvent::Kind::kPromptProgress);
  EXPECT_EQ(ev[1].kind, GenerateEvent::Kind::kReasoning);
  EXPECT_EQ(obs->content(), "echo: hi");

  // The wire: a predict channel on /llm with a query specifier.
  std::vector<Json> frames = host.received();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0]["creationParameter"]["modelSpecifier"],
            Json::parse(R"({"type":"query","query":{"identifier":"qwen"}})"));
}

TEST(Generate, RawCompletionAndInstanceReference) {
  FakeHost host(EchoScript);
  auto driver = MakeDriver(host.base_url());
  GenerateRequest req;
  req.chat = false;
  req.model = "qwen";
  req.instance_reference = "ref-1";
  req.prompt = "Once";
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), req, obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "Once!");
  EXPECT_EQ(r->stats.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(host.received()[0]["creationParameter"]["modelSpecifier"],
            Json::parse(R"({"type":"instanceReference","instanceReference":"ref-1"})"));
}

TEST(Generate, ManyConcurrentPredictionsShareOneSocket) {
  FakeHost host(EchoScript);
  auto driver = MakeDriver(host.base_url());
  constexpr int kN = 64;
  std::vector<std::shared_ptr<Collector>> observers;
  for (int i = 0; i < kN; ++i) {
    observers.push_back(std::make_shared<Collector>());
    driver->Generate(Ctx(), Chat("qwen", absl::StrCat("n", i)), observers.back());
  }
  for (int i = 0; i < kN; ++i) {
    absl::StatusOr<GenerateResult> r = observers[i]->Wait();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->content, absl::StrCat("echo: n", i));
    EXPECT_EQ(observers[i]->completions(), 1);
  }
  EXPECT_EQ(host.authenticated_total(), 1);
  EXPECT_EQ(driver->connection_stats().connects_started, 1);
  // Channel ids are distinct on the one socket.
  std::set<int64_t> ids;
  for (const Json& f : host.received()) ids.insert(f["channelId"].get<int64_t>());
  EXPECT_EQ(ids.size(), static_cast<size_t>(kN));
}

TEST(Generate, HandleCancelSendsCancelAndCompletesCancelled) {
  FakeHost host(StallScript);
  auto driver = MakeDriver(host.base_url());
  auto obs = std::make_shared<Collector>();
  auto handle = driver->Generate(Ctx(), Chat("qwen", "long story"), obs);
  ASSERT_TRUE(obs->WaitForEvents(1));
  handle->Cancel();
  handle->Cancel();  // idempotent
  absl::StatusOr<GenerateResult> r = obs->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_EQ(obs->content(), "Hello ");
  std::vector<Json> frames = host.received();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(IsCancel(frames[1]));
  EXPECT_EQ(frames[1]["channelId"], frames[0]["channelId"]);
}

TEST(Generate, CancelTokenCancelsUpstream) {
  FakeHost host(StallScript);
  auto driver = MakeDriver(host.base_url());
  auto obs = std::make_shared<Collector>();
  CallContext ctx = Ctx();
  ctx.cancel = std::make_shared<CancelToken>();
  driver->Generate(ctx, Chat("qwen", "x"), obs);
  ASSERT_TRUE(obs->WaitForEvents(1));
  ctx.cancel->Cancel();
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(IsCancel(host.received().back()));
}

TEST(Generate, AlreadyCancelledOrExpiredCompletesSynchronously) {
  FakeHost host(EchoScript);
  auto driver = MakeDriver(host.base_url());
  CallContext ctx = Ctx();
  ctx.cancel = std::make_shared<CancelToken>();
  ctx.cancel->Cancel();
  auto obs = std::make_shared<Collector>();
  driver->Generate(ctx, Chat("qwen", "x"), obs);
  EXPECT_EQ(obs->completions(), 1);
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kCancelled);
  ctx = Ctx();
  ctx.deadline = absl::Now() - absl::Seconds(1);
  auto obs2 = std::make_shared<Collector>();
  driver->Generate(ctx, Chat("qwen", "x"), obs2);
  EXPECT_EQ(obs2->Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(host.auth_attempts(), 0);  // nothing was sent
}

TEST(Generate, InvalidRequestIsRejectedBeforeSending) {
  FakeHost host(EchoScript);
  auto driver = MakeDriver(host.base_url());
  GenerateRequest req = Chat("qwen", "x");
  req.json_schema = "{oops";
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), req, obs);
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Generate, DeadlineCancelsUpstreamAndReportsDeadlineExceeded) {
  FakeHost host(StallScript);
  auto driver = MakeDriver(host.base_url());
  auto obs = std::make_shared<Collector>();
  absl::Time start = absl::Now();
  driver->Generate(Ctx(absl::Milliseconds(300)), Chat("qwen", "x"), obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_GE(obs->complete_time() - start, absl::Milliseconds(290));
  EXPECT_TRUE(IsCancel(host.received().back()));
}

TEST(Generate, HostIgnoringCancelIsFailedLocallyAfterTheGracePeriod) {
  FakeHost host([](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (IsCreate(f, "predict")) s->Send(ChannelSend(f, Fragment("a")));
  });
  SdkWsDriver::Options options;
  options.cancel_grace = absl::Milliseconds(200);
  auto driver = MakeDriver(host.base_url(), "", options);
  auto obs = std::make_shared<Collector>();
  auto handle = driver->Generate(Ctx(), Chat("qwen", "x"), obs);
  ASSERT_TRUE(obs->WaitForEvents(1));
  handle->Cancel();
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kCancelled);
}

TEST(Generate, SocketDroppedMidStreamIsUnavailableAndTheNextCallReconnects) {
  std::atomic<bool> drop{true};
  FakeHost host([&drop](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (IsCreate(f, "predict") && drop.exchange(false)) {
      s->Send(ChannelSend(f, Fragment("partial")));
      s->Drop();
      return;
    }
    EchoScript(s, f);
  });
  auto driver = MakeDriver(host.base_url());
  auto first = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("qwen", "x"), first);
  absl::StatusOr<GenerateResult> r = first->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(first->completions(), 1);

  auto second = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("qwen", "again"), second);
  r = second->Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "echo: again");
  EXPECT_EQ(host.authenticated_total(), 2);
  EXPECT_EQ(driver->connection_stats().sockets_lost, 1);
  // The first prediction was not replayed on the new socket.
  int creates = 0;
  for (const Json& f : host.received()) creates += f["type"] == "channelCreate";
  EXPECT_EQ(creates, 2);
}

TEST(Generate, ChannelErrorMapsToStatus) {
  FakeHost host([](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (IsCreate(f, "predict")) {
      s->Send(ChannelError(f, "No model matching query", "generic.noModelMatchingQuery"));
    }
  });
  auto driver = MakeDriver(host.base_url());
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("nope", "x"), obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("No model matching query"), absl::string_view::npos);
}

TEST(Generate, ToolCallEventsBecomeDeltas) {
  FakeHost host([](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (!IsCreate(f, "predict")) return;
    s->Send(ChannelSend(f, {{"type", "toolCallGenerationStart"}, {"toolCallId", "7"}}));
    s->Send(ChannelSend(f, {{"type", "toolCallGenerationNameReceived"}, {"name", "add"}}));
    s->Send(ChannelSend(f, {{"type", "toolCallGenerationArgumentFragmentGenerated"}, {"content", "{\"a\":1}"}}));
    s->Send(ChannelSend(f, {{"type", "toolCallGenerationEnd"},
                            {"toolCallRequest", {{"type", "function"}, {"id", "7"}, {"name", "add"},
                                                 {"arguments", {{"a", 1}}}}}}));
    s->Send(ChannelSend(f, PredictSuccess("toolCalls")));
    s->Send(ChannelClose(f));
  });
  auto driver = MakeDriver(host.base_url());
  GenerateRequest req = Chat("qwen", "add");
  req.tools = {{"add", "adds", R"({"type":"object","properties":{"a":{"type":"number"}}})"}};
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), req, obs);
  absl::StatusOr<GenerateResult> r = obs->Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].name, "add");
  EXPECT_EQ(r->stats.stop_reason, StopReason::kToolCalls);
  std::vector<GenerateEvent> ev = obs->events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].tool_name, "add");
  EXPECT_EQ(ev[0].tool_id, "7");
  EXPECT_EQ(ev[1].text, "{\"a\":1}");
}

TEST(Generate, DestroyingTheDriverCompletesRunningPredictions) {
  FakeHost host(StallScript);
  auto driver = MakeDriver(host.base_url());
  auto obs = std::make_shared<Collector>();
  auto handle = driver->Generate(Ctx(), Chat("qwen", "x"), obs);
  ASSERT_TRUE(obs->WaitForEvents(1));
  driver.reset();
  EXPECT_EQ(obs->Wait(absl::ZeroDuration()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(obs->completions(), 1);
  handle->Cancel();  // harmless after the driver is gone
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws::testing
