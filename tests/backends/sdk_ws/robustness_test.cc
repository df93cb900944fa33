// Every decoder of the pure protocol layer against mutated and randomly typed input: no crash,
// no exception (the input comes from the network). A deterministic stand-in until real fuzzing.
#include <random>
#include <string>
#include <vector>

#include "backends/sdk_ws/codec.h"
#include "backends/sdk_ws/prediction.h"
#include "backends/sdk_ws/protocol.h"
#include "gtest/gtest.h"

namespace lmgate::backends::sdk_ws {
namespace {

const char* const kSamples[] = {
    R"({"type":"rpcResult","callId":3,"result":[{"type":"llm","modelKey":"k","sizeBytes":1,"quantization":{"name":"Q4","bits":4},"maxContextLength":4096,"identifier":"i","ttlMs":1000,"lastUsedTime":1700000000000,"contextLength":2048}]})",
    R"({"type":"rpcError","callId":5,"error":{"title":"t","rootTitle":"r","cause":"c","displayData":{"code":"generic.noModelMatchingQuery"}}})",
    R"({"type":"channelSend","channelId":7,"message":{"type":"fragment","fragment":{"content":"Hi","tokensCount":1,"containsDrafted":false,"reasoningType":"reasoning","isStructural":false}}})",
    R"({"type":"channelSend","channelId":7,"message":{"type":"toolCallGenerationEnd","toolCallRequest":{"type":"function","id":"1","name":"f","arguments":{"a":[1,2]}}}})",
    R"({"type":"channelSend","channelId":7,"message":{"type":"success","stats":{"stopReason":"eosFound","tokensPerSecond":5.5,"timeToFirstTokenSec":0.1,"promptTokensCount":3,"predictedTokensCount":4}}})",
    R"({"type":"channelSend","channelId":1,"message":{"type":"progress","progress":0.5}})",
    R"({"type":"channelSend","channelId":1,"message":{"type":"success","info":{"identifier":"x","ttlMs":null}}})",
    R"({"type":"rpcResult","callId":1,"result":{"embedding":[0.1,0.2,-3]}})",
    R"({"type":"rpcResult","callId":1,"result":{"tokens":[1,2,3],"tokenCount":3}})",
    R"({"type":"communicationWarning","warning":"w","kind":"k"})",
    R"({"success":false,"error":"no"})",
};

// Random JSON of bounded depth, with the types a hostile host could put anywhere.
Json RandomJson(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 0 ? 9 : 7)) {
    case 0: return nullptr;
    case 1: return static_cast<bool>(rng() & 1);
    case 2: return static_cast<int64_t>(rng());
    case 3: return static_cast<uint64_t>(rng());
    case 4: return std::ldexp(static_cast<double>(rng() % 2000) - 1000, static_cast<int>(rng() % 2100) - 1050);
    case 5: return std::string(rng() % 3, static_cast<char>(rng()));
    case 6: {
      const char* words[] = {"fragment", "success", "progress", "toolCallGenerationEnd", "none",
                             "reasoning", "llm", "embedding", "eosFound", "", "\xff\xfe"};
      return words[rng() % (sizeof(words) / sizeof(words[0]))];
    }
    case 7: {
      Json a = Json::array();
      for (int i = rng() % 4; i > 0; --i) a.push_back(RandomJson(rng, depth - 1));
      return a;
    }
    default: {
      const char* keys[] = {"type", "callId", "channelId", "result", "message", "error", "fragment",
                            "content", "reasoningType", "stats", "info", "progress", "embedding",
                            "tokens", "tokenCount", "toolCallRequest", "arguments", "name", "id",
                            "displayData", "code", "title", "rootTitle", "ttlMs", "lastUsedTime",
                            "quantization", "bits", "contextLength", "success"};
      Json o = Json::object();
      for (int i = rng() % 5; i > 0; --i) {
        o[keys[rng() % (sizeof(keys) / sizeof(keys[0]))]] = RandomJson(rng, depth - 1);
      }
      return o;
    }
  }
}

// Replaces a random node of `j` (recursively) with random JSON.
void Mutate(Json& j, std::mt19937_64& rng) {
  if ((j.is_object() || j.is_array()) && !j.empty() && rng() % 4 != 0) {
    auto it = j.begin();
    std::advance(it, rng() % j.size());
    return Mutate(*it, rng);
  }
  j = RandomJson(rng, 3);
}

void DecodeEverything(const std::string& text) {
  (void)DecodeAuthReply(text);
  absl::StatusOr<ServerMessage> msg = DecodeServerMessage(text);
  if (!msg.ok()) return;
  const Json& p = msg->payload;
  PredictionStream stream;
  std::vector<GenerateEvent> events;
  stream.Consume(p, &events);
  if (stream.done()) (void)stream.TakeResult();
  (void)DecodeLoadMessage(p);
  (void)DecodeModelList(p);
  (void)DecodeInstanceList(p);
  (void)DecodeModelInfo(p);
  (void)DecodeInstanceInfo(p);
  (void)DecodeEmbedding(p);
  (void)DecodeTokens(p);
  (void)DecodeTokenCount(p);
  (void)DecodePredictionStats(p);
  (void)StatusFromSerializedError(p);
  if (p.is_array()) {
    for (const Json& e : p) {
      (void)DecodeModelInfo(e);
      (void)DecodeInstanceInfo(e);
    }
  }
}

TEST(Robustness, StructureAwareMutationsNeverThrow) {
  std::mt19937_64 rng(20261123);
  for (int round = 0; round < 1000; ++round) {
    for (const char* sample : kSamples) {
      Json j = Json::parse(sample);
      Mutate(j, rng);
      std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
      EXPECT_NO_THROW(DecodeEverything(text)) << text;
    }
  }
}

TEST(Robustness, ByteMutationsNeverThrow) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 800; ++round) {
    for (const char* sample : kSamples) {
      std::string text = sample;
      for (int edits = 1 + rng() % 4; edits > 0 && !text.empty(); --edits) {
        size_t at = rng() % text.size();
        switch (rng() % 3) {
          case 0: text[at] = static_cast<char>(rng()); break;
          case 1: text.erase(at, 1 + rng() % 8); break;
          default: text.insert(at, 1, "{}[]\",:0-e."[rng() % 11]); break;
        }
      }
      EXPECT_NO_THROW(DecodeEverything(text)) << text;
    }
  }
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws
