// POST /v1/responses, GET and DELETE /v1/responses/{id} through real sockets over the emulator:
// a 20-turn conversation carrying only the new input each turn (the host receives the whole,
// truncated conversation), streamed events, the store shared with the gRPC Chat, and errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/services/http_ingress/ingress_fixture.h"

namespace lmgate::testutil {
namespace {

using nlohmann::json;

constexpr int kContext = 512;
constexpr char kInstructions[] = "You watch a build server and report anomalies briefly.";

class ResponsesTest : public IngressFixture {
 protected:
  void ConfigureIngress(http_ingress::IngressOptions&, services::ServerOptions& so) override {
    so.gateway.lifecycle.models[kModel].load.context_length = kContext;
  }

  static std::string Observation(int i) {
    return absl::StrCat("observation ", i, ": queue depth ", 10 + i,
                        ", disk at 71 percent, two workers idle, one job retried twice");
  }

  // The texts of the last prediction's messages the host received, as "role: text".
  std::vector<std::string> LastPrediction() {
    std::vector<std::string> out;
    for (const auto& f : emu_->Frames()) {
      const auto& j = f.value("json", json::object());
      if (!j.is_object() || j.value("type", "") != "channelCreate" ||
          j.value("endpoint", "") != "predict") {
        continue;
      }
      out.clear();
      const auto history = j["creationParameter"].value("history", json::object());
      for (const auto& m : history.value("messages", json::array())) {
        std::string text;
        for (const auto& part : m.value("content", json::array())) {
          if (part.value("type", "") == "text") text += part.value("text", "");
        }
        out.push_back(m.value("role", "") + ": " + text);
      }
    }
    return out;
  }

  static std::string OutputText(const json& response) {
    std::string text;
    for (const auto& item : response["output"]) {
      if (item["type"] != "message") continue;
      for (const auto& c : item["content"]) {
        if (c["type"] == "output_text") text += c["text"].get<std::string>();
      }
    }
    return text;
  }
};

TEST_F(ResponsesTest, TwentyTurnsWithPreviousResponseIdSendOnlyTheNewInput) {
  std::string previous;
  std::vector<std::string> outputs;
  for (int turn = 1; turn <= 20; ++turn) {
    json body = {{"model", kModel},
                 {"input", Observation(turn)},
                 {"max_output_tokens", 12},
                 {"truncation", "auto"}};
    if (turn == 1) body["instructions"] = kInstructions;
    if (!previous.empty()) body["previous_response_id"] = previous;
    HttpResult r = HttpPost(port(), "/v1/responses", body.dump());
    ASSERT_EQ(r.status, 200) << "turn " << turn << ": " << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "response");
    EXPECT_EQ(j["status"], "incomplete");  // max_output_tokens reached
    EXPECT_EQ(j["incomplete_details"]["reason"], "max_output_tokens");
    ASSERT_TRUE(absl::StartsWith(j["id"].get<std::string>(), "resp_")) << r.body;
    EXPECT_EQ(j["usage"]["output_tokens"], 12);
    EXPECT_LE(j["usage"]["input_tokens"].get<int>() + 12, kContext);
    previous = j["id"].get<std::string>();
    outputs.push_back(OutputText(j));
    ASSERT_FALSE(outputs.back().empty()) << r.body;

    std::vector<std::string> sent = LastPrediction();
    ASSERT_GE(sent.size(), 2u);
    EXPECT_EQ(sent.front(), std::string("system: ") + kInstructions) << "turn " << turn;
    EXPECT_EQ(sent.back(), "user: " + Observation(turn));
    ASSERT_EQ(sent.size() % 2, 0u);
    const int kept = static_cast<int>(sent.size() - 2) / 2;
    for (int k = 0; k < kept; ++k) {
      const int t = turn - kept + k;
      EXPECT_EQ(sent[1 + 2 * k], "user: " + Observation(t)) << "turn " << turn;
      EXPECT_EQ(sent[2 + 2 * k], "assistant: " + outputs[t - 1]) << "turn " << turn;
    }
    if (turn <= 3) {
      EXPECT_EQ(kept, turn - 1);
    }
    if (turn == 20) {
      EXPECT_LT(kept, 19) << "the oldest turns were dropped";
      EXPECT_GE(kept, 2);
    }
  }
  // GET answers the stored response; DELETE removes it.
  HttpResult got = HttpCall(port(), "/v1/responses/" + previous);
  ASSERT_EQ(got.status, 200) << got.body;
  json g = json::parse(got.body);
  EXPECT_EQ(g["id"], previous);
  EXPECT_EQ(OutputText(g), outputs.back());
  EXPECT_EQ(g["instructions"], kInstructions);
  HttpCallOptions del;
  del.method = "DELETE";
  HttpResult deleted = HttpCall(port(), "/v1/responses/" + previous, del);
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(json::parse(deleted.body)["deleted"], true);
  HttpResult gone = HttpCall(port(), "/responses/" + previous);  // also without /v1
  EXPECT_EQ(gone.status, 404) << gone.body;
  EXPECT_TRUE(ErrorOf(gone).is_object()) << gone.body;
  EXPECT_EQ(HttpCall(port(), "/v1/responses/" + previous, del).status, 404);
}

TEST_F(ResponsesTest, StreamedEventsAndTheStoredResult) {
  json body = {{"model", kModel},
               {"input", "How is the build server?"},
               {"instructions", kInstructions},
               {"max_output_tokens", 10},
               {"stream", true}};
  HttpResult r = HttpPost(port(), "/v1/responses", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  std::vector<std::string> types;
  std::string id, joined, done_text;
  for (const std::string& d : SseData(r.body)) {
    json e = json::parse(d);
    types.push_back(e["type"]);
    EXPECT_EQ(e["sequence_number"], static_cast<int>(types.size()) - 1);
    if (e["type"] == "response.created") id = e["response"]["id"];
    if (e["type"] == "response.output_text.delta") joined += e["delta"].get<std::string>();
    if (e["type"] == "response.incomplete" || e["type"] == "response.completed") {
      EXPECT_EQ(e["response"]["id"], id);
      done_text = OutputText(e["response"]);
    }
  }
  ASSERT_GE(types.size(), 5u) << r.body;
  EXPECT_EQ(types[0], "response.created");
  EXPECT_EQ(types[1], "response.in_progress");
  EXPECT_EQ(types.back(), "response.incomplete");  // max_output_tokens reached
  EXPECT_NE(std::find(types.begin(), types.end(), "response.output_text.done"), types.end());
  EXPECT_FALSE(joined.empty());
  EXPECT_EQ(joined, done_text);
  HttpResult got = HttpCall(port(), "/v1/responses/" + id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(OutputText(json::parse(got.body)), joined);
}

// One store for both ingresses: an HTTP response continues over gRPC and back.
TEST_F(ResponsesTest, GrpcChatAndResponsesShareTheStore) {
  json body = {{"model", kModel},
               {"input", Observation(1)},
               {"instructions", kInstructions},
               {"max_output_tokens", 8}};
  HttpResult first = HttpPost(port(), "/v1/responses", body.dump());
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string http_id = json::parse(first.body)["id"];

  v1::ChatRequest req;
  req.set_previous_response_id(http_id);  // no model: the stored one
  req.set_store(true);
  req.mutable_sampling()->set_max_tokens(8);
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content(Observation(2));
  ChatOutcome chat = Chat(req, Scaled(absl::Seconds(20)));
  ASSERT_TRUE(chat.status.ok()) << chat.status.error_message();
  const std::string grpc_id = chat.result.response_id();
  ASSERT_TRUE(absl::StartsWith(grpc_id, "resp_"));
  std::vector<std::string> sent = LastPrediction();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0], std::string("system: ") + kInstructions);
  EXPECT_EQ(sent[1], "user: " + Observation(1));

  HttpResult got = HttpCall(port(), "/v1/responses/" + grpc_id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(OutputText(json::parse(got.body)), chat.result.content());
  json next = {{"model", kModel},
               {"input", Observation(3)},
               {"previous_response_id", grpc_id},
               {"max_output_tokens", 8},
               {"store", false}};
  HttpResult third = HttpPost(port(), "/v1/responses", next.dump());
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(LastPrediction().size(), 6u);
  // store false: an id, but nothing to GET.
  const std::string unstored = json::parse(third.body)["id"];
  EXPECT_EQ(HttpCall(port(), "/v1/responses/" + unstored).status, 404);
}

TEST_F(ResponsesTest, ClearErrors) {
  HttpResult unknown =
      HttpPost(port(), "/v1/responses",
               json({{"model", kModel},
                     {"input", "x"},
                     {"previous_response_id", "resp_0123456789abcdef0123456789abcdef"}})
                   .dump());
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_TRUE(
      absl::StrContains(ErrorOf(unknown)["message"].get<std::string>(), "no stored response"))
      << unknown.body;
  HttpResult field = HttpPost(port(), "/v1/responses",
                              json({{"model", kModel}, {"input", "x"}, {"reasoning", {}}}).dump());
  EXPECT_EQ(field.status, 400) << field.body;
  EXPECT_EQ(ErrorOf(field)["param"], "reasoning") << field.body;
  HttpResult trunc =
      HttpPost(port(), "/v1/responses",
               json({{"model", kModel}, {"input", "x"}, {"truncation", "x"}}).dump());
  EXPECT_EQ(trunc.status, 400);
  EXPECT_EQ(ErrorOf(trunc)["param"], "truncation") << trunc.body;
  HttpResult no_input = HttpPost(port(), "/v1/responses", json({{"model", kModel}}).dump());
  EXPECT_EQ(no_input.status, 400);
  EXPECT_EQ(ErrorOf(no_input)["param"], "input") << no_input.body;
  HttpResult only_system = HttpPost(
      port(), "/v1/responses",
      json({{"model", kModel}, {"input", {{{"role", "developer"}, {"content", "be brief"}}}}})
          .dump());
  EXPECT_EQ(only_system.status, 400) << only_system.body;
  HttpResult long_id = HttpCall(port(), "/v1/responses/" + std::string(300, 'a'));
  EXPECT_EQ(long_id.status, 400) << long_id.body;
  // An overflow without truncation: 400 before anything reaches the host.
  const int predictions = Stat("predictions_started");
  std::string words;
  for (int i = 0; i < 600; ++i) words += "lorem ";
  HttpResult overflow =
      HttpPost(port(), "/v1/responses",
               json({{"model", kModel}, {"input", words}, {"max_output_tokens", 10}}).dump());
  EXPECT_EQ(overflow.status, 400) << overflow.body;
  EXPECT_TRUE(absl::StrContains(ErrorOf(overflow)["message"].get<std::string>(), "context"))
      << overflow.body;
  EXPECT_EQ(Stat("predictions_started"), predictions);
}

}  // namespace
}  // namespace lmgate::testutil
