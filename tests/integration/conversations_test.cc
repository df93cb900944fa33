// Stored conversations through the gRPC API (ChatRequest.previous_response_id / store /
// truncation) against the emulator: what the host receives each turn, tenant isolation, TTL,
// and that only a successful completion is stored.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "services/admission/clock.h"
#include "services/admission/identity.h"
#include "services/conversations/store.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

constexpr int kContext = 512;
constexpr char kInstructions[] = "You watch a build server and report anomalies briefly.";

struct Message {
  std::string role;
  std::string text;
};

class ConversationsTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&, services::ServerOptions& so) override {
    admission::IdentityOptions io;
    for (const char* name : {"alice", "bob"}) {
      admission::KeyConfig k;
      k.tenant.name = name;
      k.key_sha256 = admission::Identity::Sha256Hex(absl::StrCat(name, "-key"));
      io.keys.push_back(k);
    }
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    so.identity = *std::move(identity);
    so.gateway.lifecycle.models[kModel].load.context_length = kContext;
    so.conversations.ttl = absl::Seconds(600);
    so.conversations_clock = &clock_;
  }

  struct Outcome {
    grpc::Status status;
    v1::InferenceResult result;
  };
  Outcome Chat(const v1::ChatRequest& req, const std::string& tenant = "alice") {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", tenant + "-key");
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
    auto reader = inference_->Chat(&ctx, req);
    Outcome out;
    v1::ChatResponse r;
    while (reader->Read(&r)) {
      if (r.has_result()) out.result = r.result();
    }
    out.status = reader->Finish();
    return out;
  }

  static v1::ChatRequest Turn(const std::string& input, const std::string& previous,
                              v1::Truncation truncation = v1::TRUNCATION_AUTO) {
    v1::ChatRequest req;
    req.set_model(kModel);
    req.set_driver(v1::DRIVER_SDK);
    req.mutable_sampling()->set_max_tokens(12);
    req.mutable_sampling()->set_seed(3);
    if (previous.empty()) {
      auto* sys = req.add_messages();
      sys->set_role("system");
      sys->set_content(kInstructions);
    }
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content(input);
    req.set_previous_response_id(previous);
    req.set_store(true);
    req.set_truncation(truncation);
    return req;
  }

  static std::string Observation(int i) {
    return absl::StrCat("observation ", i, ": queue depth ", 10 + i,
                        ", disk at 71 percent, two workers idle, one job retried twice");
  }

  // The messages of every prediction the host received (SDK predict channels), oldest first.
  std::vector<std::vector<Message>> Predictions() {
    std::vector<std::vector<Message>> out;
    for (const auto& f : emu_->Frames()) {
      const auto& j = f.value("json", nlohmann::json::object());
      if (!j.is_object() || j.value("type", "") != "channelCreate" ||
          j.value("endpoint", "") != "predict") {
        continue;
      }
      std::vector<Message> messages;
      const auto history = j["creationParameter"].value("history", nlohmann::json::object());
      for (const auto& m : history.value("messages", nlohmann::json::array())) {
        Message msg{m.value("role", ""), ""};
        for (const auto& part : m.value("content", nlohmann::json::array())) {
          if (part.value("type", "") == "text") msg.text += part.value("text", "");
        }
        messages.push_back(std::move(msg));
      }
      out.push_back(std::move(messages));
    }
    return out;
  }

  size_t StoredEntries() {
    auto* store = dynamic_cast<conversations::InProcessConversationStore*>(
        &server_->conversations()->store());
    return store != nullptr ? store->entries() : 0;
  }

  admission::SimulatedClock clock_;
};

// The monitoring loop of issue 15: 20 turns, each request carrying only the new observation; the
// host receives the instructions, the newest turns that fit and the new input — every turn.
TEST_F(ConversationsTest, TwentyTurnsSendOnlyTheNewInputAndTheHostGetsTheTruncatedConversation) {
  std::string previous;
  std::vector<std::string> outputs;
  for (int turn = 1; turn <= 20; ++turn) {
    Outcome out = Chat(Turn(Observation(turn), previous));
    ASSERT_TRUE(out.status.ok()) << "turn " << turn << ": " << out.status.error_message();
    ASSERT_EQ(out.result.response_id().rfind("resp_", 0), 0u) << out.result.ShortDebugString();
    EXPECT_NE(out.result.response_id(), previous);
    // Within the context, with room for the output.
    EXPECT_LE(out.result.stats().prompt_tokens() + 12, kContext) << "turn " << turn;
    previous = out.result.response_id();
    outputs.push_back(out.result.content());

    auto predictions = Predictions();
    ASSERT_EQ(predictions.size(), static_cast<size_t>(turn));
    const std::vector<Message>& sent = predictions.back();
    ASSERT_GE(sent.size(), 2u);
    EXPECT_EQ(sent.front().role, "system");
    EXPECT_EQ(sent.front().text, kInstructions);
    EXPECT_EQ(sent.back().role, "user");
    EXPECT_EQ(sent.back().text, Observation(turn));
    // Between them: whole turns (user, assistant), the newest ones, in order, ending with the
    // previous turn's answer.
    ASSERT_EQ((sent.size() - 2) % 2, 0u) << "turn " << turn;
    const int kept = static_cast<int>(sent.size() - 2) / 2;
    for (int k = 0; k < kept; ++k) {
      const int t = turn - kept + k;  // 1-based turn number of the k-th kept turn
      EXPECT_EQ(sent[1 + 2 * k].role, "user");
      EXPECT_EQ(sent[1 + 2 * k].text, Observation(t)) << "turn " << turn;
      EXPECT_EQ(sent[2 + 2 * k].role, "assistant");
      EXPECT_EQ(sent[2 + 2 * k].text, outputs[t - 1]) << "turn " << turn;
    }
    if (turn <= 3) {
      EXPECT_EQ(kept, turn - 1) << "nothing to drop yet";
    }
    if (turn == 20) {
      EXPECT_LT(kept, 19) << "the oldest turns were dropped";
      EXPECT_GE(kept, 2);
    }
  }
  EXPECT_EQ(StoredEntries(), 20u);
  // Counted with the model's tokenizer, each message once: the instructions and each input; the
  // outputs by the host's completion tokens.
  int tokenize_calls = 0;
  for (const auto& f : emu_->Frames()) {
    const auto& j = f.value("json", nlohmann::json::object());
    if (j.is_object() && j.value("type", "") == "rpcCall" &&
        j.value("endpoint", "") == "tokenize") {
      ++tokenize_calls;
    }
  }
  EXPECT_EQ(tokenize_calls, 21);
  std::printf("turn 20: %zu messages sent, %d tokenize calls over 20 turns\n",
              Predictions().back().size(), tokenize_calls);
}

TEST_F(ConversationsTest, TruncationDisabledRefusesAnOverflowBeforeGenerating) {
  std::string previous;
  grpc::Status refused;
  int turn = 1;
  for (; turn <= 40; ++turn) {
    Outcome out = Chat(Turn(Observation(turn), previous, v1::TRUNCATION_UNSPECIFIED));
    if (!out.status.ok()) {
      refused = out.status;
      break;
    }
    previous = out.result.response_id();
  }
  ASSERT_FALSE(refused.ok()) << "40 turns fit a " << kContext << "-token context";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("context of 512 tokens"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("truncation"), std::string::npos);
  EXPECT_EQ(Predictions().size(), static_cast<size_t>(turn - 1)) << "nothing reached the host";
  // The same turn with truncation auto goes through.
  Outcome out = Chat(Turn(Observation(turn), previous, v1::TRUNCATION_AUTO));
  EXPECT_TRUE(out.status.ok()) << out.status.error_message();
}

TEST_F(ConversationsTest, UnknownExpiredAndOtherTenantsIdsAreNotFound) {
  Outcome first = Chat(Turn(Observation(1), ""));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const std::string id = first.result.response_id();
  const size_t predictions = Predictions().size();

  Outcome other = Chat(Turn(Observation(2), id), "bob");
  EXPECT_EQ(other.status.error_code(), grpc::StatusCode::NOT_FOUND) << other.status.error_message();
  Outcome unknown = Chat(Turn(Observation(2), "resp_0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
  // The same answer for both: nothing tells bob the id exists.
  EXPECT_EQ(other.status.error_message().find(id) != std::string::npos, true);
  EXPECT_EQ(Predictions().size(), predictions);

  Outcome own = Chat(Turn(Observation(2), id));
  EXPECT_TRUE(own.status.ok()) << own.status.error_message();
  clock_.Advance(absl::Seconds(601));
  Outcome expired = Chat(Turn(Observation(3), own.result.response_id()));
  EXPECT_EQ(expired.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(expired.status.error_message().find("conversations.ttl_seconds"), std::string::npos)
      << expired.status.error_message();
}

TEST_F(ConversationsTest, OnlyASuccessfulCompletionIsStored) {
  Outcome first = Chat(Turn(Observation(1), ""));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(StoredEntries(), 1u);
  // The host drops the stream mid-answer: the call fails and nothing is stored.
  emu_->DropAfterFragments(2);
  Outcome dropped = Chat(Turn(Observation(2), first.result.response_id()));
  EXPECT_FALSE(dropped.status.ok());
  EXPECT_TRUE(dropped.result.response_id().empty());
  EXPECT_EQ(StoredEntries(), 1u);
  // Without store the conversation continues but is not stored either.
  v1::ChatRequest req = Turn(Observation(3), first.result.response_id());
  req.set_store(false);
  Outcome unstored = Chat(req);
  ASSERT_TRUE(unstored.status.ok()) << unstored.status.error_message();
  EXPECT_TRUE(unstored.result.response_id().empty());
  EXPECT_EQ(StoredEntries(), 1u);
  EXPECT_EQ(Predictions().back().size(), 4u);  // system, turn 1 (user, assistant), observation 3
  // A plain Chat is untouched: no id.
  Outcome plain = Chat(ChatRequest(v1::DRIVER_SDK));
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  EXPECT_TRUE(plain.result.response_id().empty());
}

TEST_F(ConversationsTest, CancelledStreamStoresNothing) {
  Outcome first = Chat(Turn(Observation(1), ""));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  emu_->StallNextPrediction(1, -1);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-api-key", "alice-key");
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + testutil::Scaled(absl::Seconds(20))));
  auto reader = inference_->Chat(&ctx, Turn(Observation(2), first.result.response_id()));
  v1::ChatResponse r;
  while (reader->Read(&r)) {
    if (r.has_content_delta()) break;
  }
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Quiescent());
  EXPECT_EQ(StoredEntries(), 1u);
}

TEST_F(ConversationsTest, UnknownTruncationIsInvalidArgument) {
  v1::ChatRequest req = Turn(Observation(1), "");
  req.set_truncation(static_cast<v1::Truncation>(9));
  Outcome out = Chat(req);
  EXPECT_EQ(out.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(out.status.error_message().find("truncation"), std::string::npos);
}

}  // namespace
}  // namespace lmgate
