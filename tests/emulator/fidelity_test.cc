// Host fidelity modes and the frame log: /api/v0/models identifier rows, repository/lmLinkStatus,
// the omitted default `parallel`, what clients sent.
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/emulator/emulator.h"
#include "tests/emulator/frame_log.h"
#include "tests/emulator/test_client.h"

namespace lmgate::emulator {
namespace {

using nlohmann::json;
using testing::HttpClient;
using testing::WsClient;

std::unique_ptr<Emulator> Start(Options o = {}) {
  o.settings.ttft_ms = 1;
  o.settings.tokens_per_second = 0;
  o.settings.load_ms_per_gb = 4;
  auto e = Emulator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

json RowsWithId(const json& list, const std::string& id) {
  json out = json::array();
  for (const json& row : list["data"]) {
    if (row["id"] == id) out.push_back(row);
  }
  return out;
}

TEST(V0IdentifierRows, OffByDefaultTheKeyRowCarriesTheInstance) {
  auto e = Start();
  ASSERT_TRUE(e->Load("qwen/qwen3-4b", std::string("primary")).ok());
  HttpClient c(e->port());
  json list = c.Get("/api/v0/models").json();
  EXPECT_EQ(RowsWithId(list, "primary").size(), 0u);
  json key = RowsWithId(list, "qwen/qwen3-4b");
  ASSERT_EQ(key.size(), 1u);
  EXPECT_EQ(key[0]["state"], "loaded");
}

TEST(V0IdentifierRows, OnACustomIdentifierIsARowOfItsOwn) {
  Options o;
  o.settings.v0_identifier_rows = true;
  auto e = Start(o);
  ASSERT_TRUE(e->Load("qwen/qwen3-4b", std::string("primary")).ok());
  HttpClient c(e->port());
  json list = c.Get("/api/v0/models").json();
  json own = RowsWithId(list, "primary");
  ASSERT_EQ(own.size(), 1u) << list.dump();
  EXPECT_EQ(own[0]["state"], "loaded");
  json key = RowsWithId(list, "qwen/qwen3-4b");
  ASSERT_EQ(key.size(), 1u);
  EXPECT_EQ(key[0]["state"], "not-loaded");
  // The single-model form answers by identifier too.
  EXPECT_EQ(c.Get("/api/v0/models/primary").json()["id"], "primary");
  // Settable at runtime, like every knob.
  ASSERT_TRUE(e->ApplySettings({{"v0_identifier_rows", false}}).ok());
  EXPECT_EQ(RowsWithId(c.Get("/api/v0/models").json(), "primary").size(), 0u);
}

TEST(LmLinkStatus, OnByDefaultLikeAHostWithoutLmLink) {
  auto e = Start();
  auto repo = WsClient::Connect(e->port(), "repository");
  ASSERT_TRUE(repo.ok()) << repo.status();
  (*repo)->Auth();
  json r = (*repo)->Rpc("lmLinkStatus");
  ASSERT_EQ(r["type"], "rpcResult") << r;
  // Every field lmLinkStatusResultSchema requires, with the values of LM Link off.
  EXPECT_EQ(r["result"]["status"], "offline");
  EXPECT_EQ(r["result"]["issues"], json::array({"notLoggedIn"}));
  EXPECT_EQ(r["result"]["peers"], json::array());
  EXPECT_TRUE(r["result"]["deviceIdentifier"].is_null());
  EXPECT_TRUE(r["result"]["deviceName"].is_string());
  // Other repository endpoints stay unknown.
  EXPECT_EQ((*repo)->Rpc("fuzzyFindStaffPicks")["type"], "rpcError");
  // Off: an rpcError, like a host before LM Link.
  ASSERT_TRUE(e->ApplySettings({{"lm_link_status", false}}).ok());
  EXPECT_EQ((*repo)->Rpc("lmLinkStatus")["type"], "rpcError");
}

// The load-config field numParallelSessions of an instance, or null.
json ParallelField(WsClient& llm, const std::string& identifier) {
  json cfg = llm.Rpc("getLoadConfig", {{"specifier", {{"type", "query"},
                                                     {"query", {{"identifier", identifier}}}}}});
  for (const json& f : cfg["result"]["fields"]) {
    if (f["key"] == "llm.load.numParallelSessions") return f["value"];
  }
  return nullptr;
}

json V1Instance(HttpClient& c, const std::string& identifier) {
  const json list = c.Get("/api/v1/models").json();
  for (const json& m : list["models"]) {
    for (const json& i : m["loaded_instances"]) {
      if (i["id"] == identifier) return i;
    }
  }
  return nullptr;
}

TEST(OmitDefaultParallel, OffTheHostReportsItsDefault) {
  auto e = Start();
  ASSERT_TRUE(e->Load("qwen/qwen3-4b").ok());
  auto llm = WsClient::Connect(e->port(), "llm");
  ASSERT_TRUE(llm.ok());
  (*llm)->Auth();
  EXPECT_EQ(ParallelField(**llm, "qwen/qwen3-4b"), 4);
  HttpClient c(e->port());
  EXPECT_EQ(V1Instance(c, "qwen/qwen3-4b")["config"]["parallel"], 4);
}

TEST(OmitDefaultParallel, OnOnlyAParallelTheLoadSetIsReported) {
  Options o;
  o.settings.omit_default_parallel = true;
  auto e = Start(o);
  ASSERT_TRUE(e->Load("qwen/qwen3-4b").ok());
  ASSERT_TRUE(e->Load("qwen/qwen3-4b", std::string("two"), std::nullopt, 0, 2).ok());
  auto llm = WsClient::Connect(e->port(), "llm");
  ASSERT_TRUE(llm.ok());
  (*llm)->Auth();
  EXPECT_TRUE(ParallelField(**llm, "qwen/qwen3-4b").is_null());
  EXPECT_EQ(ParallelField(**llm, "two"), 2);
  HttpClient c(e->port());
  json plain = V1Instance(c, "qwen/qwen3-4b");
  ASSERT_TRUE(plain.is_object());
  EXPECT_FALSE(plain["config"].contains("parallel")) << plain;
  EXPECT_EQ(V1Instance(c, "two")["config"]["parallel"], 2);
  // The REST load's echoed load_config leaves it out too.
  json loaded = c.Post("/api/v1/models/load", {{"model", "qwen/qwen3-4b"},
                                               {"identifier", "rest"},
                                               {"echo_load_config", true}}).json();
  ASSERT_TRUE(loaded.contains("load_config")) << loaded;
  EXPECT_FALSE(loaded["load_config"].contains("parallel")) << loaded;
  // The instance still has the default number of slots; only the report is missing.
  int slots = 0;
  const json stats = e->Stats();
  for (const json& i : stats["loaded_instances"]) {
    if (i["identifier"] == "qwen/qwen3-4b") slots = i["parallel"];
  }
  EXPECT_EQ(slots, 4);
}

TEST(FrameLog, RecordsHttpRequestsAndSdkFramesWithSecretsRedacted) {
  const std::string path = ::testing::TempDir() + "/frames.jsonl";
  std::remove(path.c_str());
  Options o;
  o.frame_log.path = path;
  auto e = Start(o);
  HttpClient c(e->port());
  ASSERT_EQ(c.Get("/api/v0/models?x=1", "sk-lm-AbCd1234:abcdefghijklmnopqrst").status, 200);
  ASSERT_EQ(c.Get("/__emulator/stats").status, 200);  // control API: not logged
  auto ws = WsClient::Connect(e->port(), "llm");
  ASSERT_TRUE(ws.ok()) << ws.status();
  (*ws)->Auth("guest:test", "secret-pass");
  (*ws)->Rpc("listLoaded");

  std::vector<json> frames = e->Frames();
  ASSERT_GE(frames.size(), 4u);
  EXPECT_EQ(frames[0]["transport"], "http");
  EXPECT_EQ(frames[0]["method"], "GET");
  EXPECT_EQ(frames[0]["path"], "/api/v0/models");
  EXPECT_EQ(frames[0]["query"], "x=1");
  EXPECT_EQ(frames[0]["headers"]["authorization"], "Bearer sk-lm-AbCd1234:<redacted>");
  EXPECT_EQ(frames[1]["event"], "open");
  EXPECT_EQ(frames[1]["namespace"], "llm");
  EXPECT_EQ(frames[2]["json"]["clientPasskey"], "<redacted>");
  EXPECT_EQ(frames[2]["json"]["clientIdentifier"], "guest:test");
  EXPECT_EQ(frames[3]["json"]["endpoint"], "listLoaded");
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(frames[i]["seq"], i);

  // The same entries over HTTP, and appended to the file as JSON lines.
  json over_http = c.Get("/__emulator/frames").json();
  EXPECT_EQ(over_http["frames"].size(), frames.size());
  EXPECT_EQ(over_http["dropped"], 0);
  std::ifstream in(path);
  std::string line;
  size_t lines = 0;
  while (std::getline(in, line)) {
    json entry = json::parse(line, nullptr, false);
    ASSERT_FALSE(entry.is_discarded()) << line;
    EXPECT_EQ(line.find("secret-pass"), std::string::npos);
    ++lines;
  }
  EXPECT_GE(lines, frames.size());
  e->ClearFrames();
  EXPECT_TRUE(e->Frames().empty());
}

TEST(FrameLog, BoundedInMemoryOldestDropped) {
  FrameLogOptions o;
  o.max_entries = 3;
  auto log = FrameLog::Create(o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 10; ++i) (*log)->RecordHttpRequest("GET", "/v1/models", {}, "");
  std::vector<json> frames = (*log)->Frames();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0]["seq"], 7);
  EXPECT_EQ((*log)->dropped(), 7);

  FrameLogOptions by_bytes;
  by_bytes.max_bytes = 100 * 1024;
  auto small = FrameLog::Create(by_bytes);
  ASSERT_TRUE(small.ok());
  const std::string big(1024 * 1024, 'x');  // over 64 KiB: kept as a 4 KiB prefix
  for (int i = 0; i < 20; ++i) (*small)->RecordHttpRequest("POST", "/v1/chat/completions", {}, big);
  frames = (*small)->Frames();
  ASSERT_FALSE(frames.empty());
  EXPECT_LT(frames.size(), 3u);
  EXPECT_EQ(frames.back()["truncated"], true);
  EXPECT_EQ(frames.back()["text"].get<std::string>().size(), 4096u);
  EXPECT_EQ(frames.back()["bytes"], big.size());
}

TEST(FrameLog, DeepOrInvalidBodiesAreKeptAsText) {
  auto log = FrameLog::Create({});
  ASSERT_TRUE(log.ok());
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  (*log)->RecordHttpRequest("POST", "/v1/chat/completions", {}, deep);
  (*log)->RecordHttpRequest("POST", "/v1/chat/completions", {}, "{not json");
  std::vector<json> frames = (*log)->Frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0]["text"], deep);
  EXPECT_EQ(frames[1]["text"], "{not json");
}

TEST(FrameLog, UnwritablePathFailsCreate) {
  Options o;
  o.frame_log.path = "/nonexistent-dir/frames.jsonl";
  auto e = Emulator::Create(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("log_frames"), std::string::npos) << e.status();
}

}  // namespace
}  // namespace lmgate::emulator
