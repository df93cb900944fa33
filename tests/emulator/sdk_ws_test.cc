// The SDK WebSocket protocol over a real socket (§1).
#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::WaitFor;
using testing::WsClient;

std::unique_ptr<Emulator> Start(Options o = {}) {
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;
  o.settings.load_ms_per_gb = 4;
  auto e = Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

std::unique_ptr<WsClient> Open(const Emulator& e, const std::string& ns, bool auth = true) {
  auto c = WsClient::Connect(e.port(), ns);
  EXPECT_TRUE(c.ok()) << c.status();
  if (auth) {
    EXPECT_EQ((*c)->Auth(), json({{"success", true}}));
  }
  return *std::move(c);
}

json LoadParam(const std::string& key, json extra = json::object()) {
  json p = {{"modelKey", key},
            {"loadConfigStack",
             {{"layers",
               {{{"layerName", "apiOverride"},
                 {"config", {{"fields", {{{"key", "llm.load.contextLength"}, {"value", 8192}}}}}}}}}}}};
  p.update(extra);
  return p;
}

json PredictParam(const std::string& instance_reference, const std::string& user,
                  json fields = json::array()) {
  return {{"modelSpecifier",
           {{"type", "instanceReference"}, {"instanceReference", instance_reference}}},
          {"history",
           {{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", user}}}}}}}}},
          {"predictionConfigStack",
           {{"layers", {{{"layerName", "apiOverride"}, {"config", {{"fields", fields}}}}}}}}};
}

std::vector<std::string> Types(const std::vector<json>& frames) {
  std::vector<std::string> out;
  for (const json& f : frames) {
    out.push_back(f["type"] == "channelSend" ? f["message"]["type"].get<std::string>()
                                             : f["type"].get<std::string>());
  }
  return out;
}

TEST(SdkWs, HandshakeListLoadPredictUnload) {
  auto e = Start();
  auto llm = Open(*e, "llm");
  EXPECT_EQ(llm->Rpc("listLoaded"), json({{"type", "rpcResult"}, {"callId", 0}, {"result", json::array()}}));

  const int64_t load_id = llm->next_id();
  std::vector<json> load =
      llm->Channel("loadModel", load_id, LoadParam("qwen/qwen3-4b", {{"identifier", "my-qwen"},
                                                                     {"ttlMs", 300000}}));
  EXPECT_EQ(Types(load), (std::vector<std::string>{"resolved", "progress", "progress", "progress",
                                                   "progress", "success", "channelClose"}));
  EXPECT_EQ(load[0]["message"]["info"]["modelKey"], "qwen/qwen3-4b");
  EXPECT_TRUE(load[0]["message"]["info"]["deviceIdentifier"].is_null());
  EXPECT_EQ(load[4]["message"]["progress"], 1.0);
  const json info = load[5]["message"]["info"];
  EXPECT_EQ(info["identifier"], "my-qwen");
  EXPECT_EQ(info["ttlMs"], 300000);
  EXPECT_TRUE(info["lastUsedTime"].is_null());
  EXPECT_EQ(info["contextLength"], 8192);
  const std::string ref = info["instanceReference"];

  json cfg = llm->Rpc("getLoadConfig", {{"specifier", {{"type", "instanceReference"},
                                                       {"instanceReference", ref}}}});
  bool found = false;
  for (const json& f : cfg["result"]["fields"]) {
    if (f["key"] == "llm.load.contextLength") found = f["value"] == 8192;
  }
  EXPECT_TRUE(found) << cfg;

  std::vector<json> pred = llm->Channel(
      "predict", llm->next_id(),
      PredictParam(ref, "Say hello.",
                   {{{"key", "llm.prediction.maxPredictedTokens"},
                     {"value", {{"checked", true}, {"value", 100}}}}}));
  ASSERT_GE(pred.size(), 5u);
  EXPECT_EQ(pred[0]["message"]["type"], "promptProcessingProgress");
  EXPECT_EQ(pred[0]["message"]["details"]["cachedTokenCount"], 0);
  EXPECT_EQ(pred[2]["message"]["type"], "fragment");
  const json frag = pred[2]["message"]["fragment"];
  for (const char* k : {"content", "tokensCount", "containsDrafted", "reasoningType", "isStructural"}) {
    EXPECT_TRUE(frag.contains(k)) << k;
  }
  const json success = pred[pred.size() - 2]["message"];
  EXPECT_EQ(success["type"], "success");
  EXPECT_EQ(success["stats"]["stopReason"], "eosFound");
  for (const char* k : {"tokensPerSecond", "numGpuLayers", "timeToFirstTokenSec", "totalTimeSec",
                        "promptTokensCount", "predictedTokensCount", "totalTokensCount"}) {
    EXPECT_TRUE(success["stats"].contains(k)) << k;
  }
  EXPECT_TRUE(success["modelInfo"]["lastUsedTime"].is_number());
  EXPECT_TRUE(success.contains("loadModelConfig"));
  EXPECT_TRUE(success.contains("predictionConfig"));
  EXPECT_EQ(pred.back()["type"], "channelClose");

  json state = llm->Rpc("getInstanceProcessingState",
                        {{"specifier", {{"type", "query"}, {"query", {{"identifier", "my-qwen"}}}}},
                         {"throwIfNotFound", true}});
  EXPECT_EQ(state["result"], json({{"status", "idle"}, {"queued", 0}}));
  json unload = llm->Rpc("unloadModel", {{"identifier", "my-qwen"}, {"deviceIdentifier", nullptr}});
  EXPECT_EQ(unload.size(), 2u) << unload;  // {"type":"rpcResult","callId":N}: void has no result
  EXPECT_EQ(unload["type"], "rpcResult");
  EXPECT_EQ(llm->Rpc("listLoaded")["result"], json::array());
  json stats = e->Stats();
  EXPECT_EQ(stats["loads_started"], 1);
  EXPECT_EQ(stats["unloads"], 1);
  EXPECT_EQ(stats["predictions_finished"], 1);
  EXPECT_GE(stats["requests_by_interface"]["sdk"].get<int>(), 6);
}

TEST(SdkWs, CancelEndsWithUserStoppedAndSocketCloseCancels) {
  auto e = Start();
  // A 200-token answer at 50 tokens/s: a cancel after 2 fragments must end it long before that,
  // however slow the machine is.
  ASSERT_TRUE(e->ApplySettings({{"tokens_per_second", 50},
                                {"min_response_tokens", 200},
                                {"max_response_tokens", 200}})
                  .ok());
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  auto llm = Open(*e, "llm");
  const std::string ref = llm->Rpc("listLoaded")["result"][0]["instanceReference"];
  const int64_t id = llm->next_id();
  int fragments = 0;
  std::vector<json> frames =
      llm->Channel("predict", id, PredictParam(ref, "Tell me a long story."), [&](const json& m) {
        if (m["type"] == "fragment" && ++fragments == 2) {
          llm->Send({{"type", "channelSend"}, {"channelId", id}, {"message", {{"type", "cancel"}}}});
        }
      });
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames.back()["type"], "channelClose");
  const json success = frames[frames.size() - 2]["message"];
  EXPECT_EQ(success["type"], "success");
  EXPECT_EQ(success["stats"]["stopReason"], "userStopped");
  EXPECT_LT(success["stats"]["predictedTokensCount"].get<int>(), 100);
  EXPECT_EQ(e->Stats()["predictions_active"], 0);
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);

  // A socket that goes away cancels its running prediction.
  e->StallNextPrediction(1, -1);
  llm->Send({{"type", "channelCreate"}, {"endpoint", "predict"}, {"channelId", llm->next_id()},
             {"creationParameter", PredictParam(ref, "again")}});
  ASSERT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 1; }));
  llm->Drop();
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 2);
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["ws_connections_open"] == 0; }));
}

TEST(SdkWs, UnknownEndpointsFailInsteadOfHanging) {
  auto e = Start();
  auto llm = Open(*e, "llm");
  json err = llm->Rpc("noSuchEndpoint");
  EXPECT_EQ(err["type"], "rpcError");
  EXPECT_TRUE(err["error"]["title"].is_string());
  EXPECT_EQ(err["error"]["rootTitle"], err["error"]["title"]);
  std::vector<json> ch = llm->Channel("noSuchChannel", llm->next_id(), json::object());
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0]["type"], "channelError");
  auto repo = Open(*e, "repository");
  EXPECT_EQ(repo->Rpc("noSuchEndpoint")["type"], "rpcError");
  llm->Send({{"type", "keepAlive"}});
  EXPECT_EQ(llm->Next(), json({{"type", "keepAliveAck"}}));
  // A query that matches nothing carries the SDK's displayData.
  json info = llm->Rpc("getModelInfo", {{"specifier", {{"type", "query"}, {"query", {{"identifier", "x"}}}}},
                                        {"throwIfNotFound", true}});
  EXPECT_EQ(info["error"]["displayData"]["code"], "generic.noModelMatchingQuery");
  json quiet = llm->Rpc("getModelInfo", {{"specifier", {{"type", "query"}, {"query", json::object()}}},
                                         {"throwIfNotFound", false}});
  EXPECT_EQ(quiet["type"], "rpcResult");
  EXPECT_FALSE(quiet.contains("result"));
  std::vector<json> bad = llm->Channel("loadModel", llm->next_id(), LoadParam("no/such-model"));
  EXPECT_EQ(bad.back()["type"], "channelError");
  EXPECT_EQ(bad.back()["error"]["displayData"]["code"], "generic.pathNotFound");
}

TEST(SdkWs, WrongParameterTypesFailTheCallInsteadOfCrashing) {
  auto e = Start();
  auto llm = Open(*e, "llm");
  json bad = llm->Rpc("tokenize", {{"specifier", 5}, {"inputString", 7}});
  EXPECT_EQ(bad["type"], "rpcError");
  std::vector<json> ch = llm->Channel("loadModel", llm->next_id(), {{"modelKey", 42}});
  EXPECT_EQ(ch.back()["type"], "channelError");
  llm->Send({{"type", 5}});
  EXPECT_EQ(llm->Next().value_or(json())["type"], "communicationWarning");
  llm->Send(json("not an object"));
  EXPECT_EQ(llm->Next().value_or(json())["type"], "communicationWarning");
  EXPECT_EQ(llm->Rpc("listLoaded")["type"], "rpcResult");  // the socket still works
}

TEST(SdkWs, CallsAndChannelsUseSeparateIdSpaces) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  auto llm = Open(*e, "llm");
  const std::string ref = llm->Rpc("listLoaded")["result"][0]["instanceReference"];
  // Python SDK style: channel 1 and call 1 at the same time.
  e->StallNextPrediction(1, -1);
  llm->Send({{"type", "channelCreate"}, {"endpoint", "predict"}, {"channelId", 1},
             {"creationParameter", PredictParam(ref, "hi")}});
  llm->Send({{"type", "rpcCall"}, {"endpoint", "listLoaded"}, {"callId", 1}});
  bool got_result = false;
  while (auto f = llm->Next()) {
    if (f->value("type", "") == "rpcResult" && (*f)["callId"] == 1) {
      got_result = true;
      break;
    }
  }
  EXPECT_TRUE(got_result);
  llm->Send({{"type", "channelSend"}, {"channelId", 1}, {"message", {{"type", "cancel"}}}});
  std::string last;
  while (auto f = llm->Next()) {
    last = f->value("type", "");
    if (last == "channelClose" || last == "channelError") break;
  }
  EXPECT_EQ(last, "channelClose");
}

TEST(SdkWs, GetOrLoadEvictsOtherJitModelAndEmbeds) {
  auto e = Start();
  auto llm = Open(*e, "llm");
  std::vector<json> first = llm->Channel(
      "getOrLoad", llm->next_id(), {{"identifier", "qwen/qwen3-4b"}, {"loadConfigStack", {{"layers", json::array()}}}});
  EXPECT_EQ(Types(first), (std::vector<std::string>{"startLoading", "loadProgress", "loadProgress",
                                                    "loadProgress", "loadProgress", "loadSuccess",
                                                    "channelClose"}));
  EXPECT_EQ(first[5]["message"]["info"]["ttlMs"], 3600000);
  std::vector<json> again = llm->Channel(
      "getOrLoad", llm->next_id(), {{"identifier", "qwen/qwen3-4b"}, {"loadConfigStack", {{"layers", json::array()}}}});
  EXPECT_EQ(Types(again), (std::vector<std::string>{"alreadyLoaded", "channelClose"}));
  std::vector<json> other = llm->Channel(
      "getOrLoad", llm->next_id(),
      {{"identifier", "google/gemma-3-1b"}, {"loadTtlMs", 5000}, {"loadConfigStack", {{"layers", json::array()}}}});
  ASSERT_GE(other.size(), 3u);
  EXPECT_EQ(Types(other)[0], "unloadingOtherJITModel");
  EXPECT_EQ(other[0]["message"]["info"]["identifier"], "qwen/qwen3-4b");
  EXPECT_EQ(other[other.size() - 2]["message"]["info"]["ttlMs"], 5000);

  auto emb = Open(*e, "embedding");
  std::vector<json> load = emb->Channel(
      "getOrLoad", emb->next_id(),
      {{"identifier", "text-embedding-nomic-embed-text-v1.5"}, {"loadConfigStack", {{"layers", json::array()}}}});
  const std::string ref = load[load.size() - 2]["message"]["info"]["instanceReference"];
  json v = emb->Rpc("embedString", {{"modelSpecifier", {{"type", "instanceReference"}, {"instanceReference", ref}}},
                                    {"inputString", "hello"}});
  EXPECT_EQ(v["result"]["embedding"].size(), 768u);
  json tok = emb->Rpc("countTokens", {{"specifier", {{"type", "instanceReference"}, {"instanceReference", ref}}},
                                      {"inputString", "Hello world!"}});
  EXPECT_EQ(tok["result"]["tokenCount"], 3);
  EXPECT_EQ(e->Stats()["embeddings"], 1);
  // Loading an LLM over /embedding is a domain mismatch.
  std::vector<json> mismatch = emb->Channel("loadModel", emb->next_id(), LoadParam("qwen/qwen3-4b"));
  EXPECT_EQ(mismatch.back()["error"]["displayData"]["code"], "generic.domainMismatch");
}

TEST(SdkWs, SystemNamespace) {
  auto e = Start();
  auto sys = Open(*e, "system");
  json models = sys->Rpc("listDownloadedModels")["result"];
  ASSERT_EQ(models.size(), 5u);
  EXPECT_EQ(models[0]["modelKey"], "qwen/qwen3-4b");
  EXPECT_EQ(sys->Rpc("version")["result"]["version"], "0.4.0");
  EXPECT_TRUE(sys->Rpc("info")["result"]["pid"].is_number());
  EXPECT_EQ(sys->Rpc("listDownloadedModelVariants", {{"modelKey", "google/gemma-3-1b"}})["result"].size(), 1u);
  EXPECT_EQ(e->Stats()["ws_connections_total"], 1);
}

TEST(SdkWs, ToolCallEvents) {
  auto e = Start();
  ASSERT_TRUE(e->Load("qwen/qwen3-4b").ok());
  auto llm = Open(*e, "llm");
  const std::string ref = llm->Rpc("listLoaded")["result"][0]["instanceReference"];
  const json tools = json::parse(R"({"type":"toolArray","tools":[{"type":"function",
      "function":{"name":"add","parameters":{"type":"object",
      "properties":{"a":{"type":"number"},"b":{"type":"number"}}}}}]})");
  std::vector<json> frames = llm->Channel(
      "predict", llm->next_id(), PredictParam(ref, "What is 2+3?", {{{"key", "llm.prediction.tools"}, {"value", tools}}}));
  std::vector<std::string> types = Types(frames);
  auto has = [&](const std::string& t) { return std::find(types.begin(), types.end(), t) != types.end(); };
  EXPECT_TRUE(has("toolCallGenerationStart"));
  EXPECT_TRUE(has("toolCallGenerationNameReceived"));
  EXPECT_TRUE(has("toolCallGenerationArgumentFragmentGenerated"));
  ASSERT_TRUE(has("toolCallGenerationEnd"));
  for (const json& f : frames) {
    if (f["type"] == "channelSend" && f["message"]["type"] == "toolCallGenerationEnd") {
      const json req = f["message"]["toolCallRequest"];
      EXPECT_EQ(req["type"], "function");
      EXPECT_EQ(req["name"], "add");
      EXPECT_TRUE(req["arguments"]["a"].is_number());
    }
    if (f["type"] == "channelSend" && f["message"]["type"] == "success") {
      EXPECT_EQ(f["message"]["stats"]["stopReason"], "toolCalls");
    }
  }
}

TEST(SdkWs, ApiTokenAuth) {
  Options o;
  o.api_token = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";
  auto e = Start(o);
  auto good = Open(*e, "llm", /*auth=*/false);
  EXPECT_EQ(good->Auth("AbCd1234", "ABCDEFGHIJKLMNOPQRST"), json({{"success", true}}));
  auto bad = Open(*e, "llm", /*auth=*/false);
  json reply = bad->Auth("guest:abc", "xyz");
  EXPECT_EQ(reply["success"], false);
  EXPECT_TRUE(reply["error"].is_string());
  EXPECT_FALSE(bad->Next(absl::Seconds(5)).has_value());  // exactly one frame, then closed
  EXPECT_TRUE(bad->WaitClosed());
}

TEST(SdkWs, FcfsPasskeysAndIgnoredPreAuthFrames) {
  auto e = Start();
  auto a = Open(*e, "llm", /*auth=*/false);
  a->Send({{"type", "rpcCall"}, {"endpoint", "listLoaded"}, {"callId", 0}});  // ignored
  EXPECT_EQ(a->Auth("guest:same", "one"), json({{"success", true}}));
  auto b = Open(*e, "system", /*auth=*/false);
  EXPECT_EQ(b->Auth("guest:same", "two")["success"], false);
  auto c = Open(*e, "system", /*auth=*/false);
  EXPECT_EQ(c->Auth("guest:same", "one")["success"], true);
}

TEST(SdkWs, DropFaultClosesSocketMidPrediction) {
  auto e = Start();
  ASSERT_TRUE(e->Load("google/gemma-3-1b").ok());
  auto llm = Open(*e, "llm");
  const std::string ref = llm->Rpc("listLoaded")["result"][0]["instanceReference"];
  e->DropAfterFragments(3);
  std::vector<json> frames = llm->Channel("predict", llm->next_id(), PredictParam(ref, "hi"));
  int fragments = 0;
  for (const json& f : frames) fragments += f["type"] == "channelSend" && f["message"]["type"] == "fragment";
  EXPECT_EQ(fragments, 3);
  EXPECT_TRUE(llm->WaitClosed());
  EXPECT_TRUE(WaitFor([&] { return e->Stats()["predictions_active"] == 0; }));
  EXPECT_EQ(e->Stats()["predictions_cancelled"], 1);
}

// LM Studio's WebSocket server (`ws`) accepts messages up to its default maxPayload of 100 MiB;
// Beast's own default would close the socket above 16 MiB (a big prompt from the official SDK).
TEST(SdkWs, AcceptsMessagesLargerThan16MiB) {
  auto e = Start();
  auto sys = Open(*e, "system");
  const std::string padding(16 * 1024 * 1024 + 1024, 'x');  // just over Beast's default
  json r = sys->Rpc("version", {{"padding", padding}});
  EXPECT_EQ(r["type"], "rpcResult") << r.dump().substr(0, 300);
  EXPECT_EQ(r["result"]["version"], "0.4.0");
}

}  // namespace
}  // namespace lmgate::emulator
