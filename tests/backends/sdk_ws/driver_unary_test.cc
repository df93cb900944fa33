// ListModels, Load, Unload, Embed, Tokenize, CountTokens, Probe and authentication against the
// scripted FakeHost.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "backends/registry.h"
#include "backends/sdk_ws/register.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "gtest/gtest.h"
#include "tests/backends/sdk_ws/fake_host.h"
#include "tests/backends/sdk_ws/test_util.h"

namespace lmgate::backends::sdk_ws::testing {
namespace {

Json LlmInfo(const std::string& key) {
  return {{"type", "llm"}, {"modelKey", key}, {"format", "gguf"}, {"displayName", key},
          {"publisher", "p"}, {"path", key}, {"sizeBytes", 100}, {"indexedModelIdentifier", key},
          {"deviceIdentifier", nullptr}, {"vision", false}, {"trainedForToolUse", true},
          {"maxContextLength", 4096}};
}
Json EmbeddingInfo(const std::string& key) {
  Json j = LlmInfo(key);
  j["type"] = "embedding";
  j.erase("vision");
  j.erase("trainedForToolUse");
  return j;
}
Json Instance(Json info, const std::string& identifier) {
  info["identifier"] = identifier;
  info["instanceReference"] = "ref-" + identifier;
  info["ttlMs"] = nullptr;
  info["lastUsedTime"] = nullptr;
  info["contextLength"] = 2048;
  return info;
}
bool IsCall(const Json& f, const char* endpoint) {
  return f["type"] == "rpcCall" && f["endpoint"] == endpoint;
}

// A small host: one llm and one embedding model; loads/unloads/tokenizes; records paths.
class MiniHost {
 public:
  MiniHost()
      : host_([this](const std::shared_ptr<FakeSession>& s, const Json& f) { Handle(s, f); },
              [this](const Json& auth) { return Auth(auth); }) {}

  FakeHost& host() { return host_; }
  std::string required_identifier;  // set before use to require a token identity
  std::vector<std::string> paths() {
    absl::MutexLock lock(&mu_);
    return paths_;
  }
  std::vector<Json> auth_packets() {
    absl::MutexLock lock(&mu_);
    return auth_packets_;
  }

 private:
  std::optional<std::string> Auth(const Json& auth) {
    absl::MutexLock lock(&mu_);
    auth_packets_.push_back(auth);
    if (!required_identifier.empty() && auth["clientIdentifier"] != required_identifier) {
      return "Invalid passkey or identifier";
    }
    return std::nullopt;
  }

  void Handle(const std::shared_ptr<FakeSession>& s, const Json& f) {
    {
      absl::MutexLock lock(&mu_);
      paths_.push_back(s->path() + " " + f.value("endpoint", f["type"].get<std::string>()));
    }
    bool embedding = s->path() == "/embedding";
    if (IsCall(f, "listDownloadedModels")) {
      s->Send(RpcResult(f, Json::array({LlmInfo("qwen/qwen3-4b"), EmbeddingInfo("nomic")})));
    } else if (IsCall(f, "listLoaded")) {
      s->Send(RpcResult(f, embedding ? Json::array({Instance(EmbeddingInfo("nomic"), "nomic")})
                                     : Json::array({Instance(LlmInfo("qwen/qwen3-4b"), "q")})));
    } else if (IsCall(f, "unloadModel")) {
      std::string id = f["parameter"]["identifier"];
      if ((embedding && id == "nomic") || (!embedding && id == "q")) {
        s->Send(RpcResult(f, std::nullopt));
      } else {
        s->Send(RpcError(f, "No instance \"" + id + "\"", "generic.identifierNotFound"));
      }
    } else if (IsCall(f, "getLoadConfig")) {
      s->Send(RpcResult(f, Json{{"fields", Json::array()}}));
    } else if (IsCall(f, "tokenize") || IsCall(f, "countTokens")) {
      std::string model = f["parameter"]["specifier"]["query"]["identifier"];
      if (model != (embedding ? "nomic" : "q")) {
        return s->Send(RpcError(f, "No model matching query", "generic.noModelMatchingQuery"));
      }
      std::string text = f["parameter"]["inputString"];
      if (IsCall(f, "tokenize")) {
        Json tokens = Json::array();
        for (unsigned char c : text) tokens.push_back(static_cast<int>(c));
        s->Send(RpcResult(f, Json{{"tokens", tokens}}));
      } else {
        s->Send(RpcResult(f, Json{{"tokenCount", text.size()}}));
      }
    } else if (IsCall(f, "embedString")) {
      std::string text = f["parameter"]["inputString"];
      s->Send(RpcResult(f, Json{{"embedding", {static_cast<double>(text.size()), 0.5, -1.0}}}));
    } else if (f["type"] == "channelCreate" && f["endpoint"] == "loadModel") {
      const Json& p = f["creationParameter"];
      std::string key = p["modelKey"];
      if (key != "qwen/qwen3-4b" && key != "nomic") {
        return s->Send(ChannelError(f, "Cannot find model with key \"" + key + "\""));
      }
      s->Send(ChannelSend(f, {{"type", "resolved"}, {"info", embedding ? EmbeddingInfo(key) : LlmInfo(key)}}));
      for (double progress : {0.25, 0.5, 1.0}) {
        s->Send(ChannelSend(f, {{"type", "progress"}, {"progress", progress}}));
      }
      if (key == "nomic" || p.contains("identifier")) {
        Json info = Instance(embedding ? EmbeddingInfo(key) : LlmInfo(key), p.value("identifier", key));
        if (p.contains("ttlMs")) info["ttlMs"] = p["ttlMs"];
        s->Send(ChannelSend(f, {{"type", "success"}, {"info", info}}));
        s->Send(ChannelClose(f));
      }
      // qwen without an identifier: stays "loading" until cancelled.
    } else if (f["type"] == "channelSend" && f["message"]["type"] == "cancel") {
      s->Send(ChannelError(f, "Load cancelled"));
    }
  }

  absl::Mutex mu_;
  std::vector<std::string> paths_ ABSL_GUARDED_BY(mu_);
  std::vector<Json> auth_packets_ ABSL_GUARDED_BY(mu_);
  FakeHost host_;  // last: its thread calls into the members above
};

TEST(Unary, ListModelsQueriesAllThreeNamespaces) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  absl::StatusOr<HostModels> models = driver->ListModels(Ctx());
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->downloaded.size(), 2u);
  EXPECT_EQ(models->downloaded[0].key, "qwen/qwen3-4b");
  EXPECT_EQ(models->downloaded[1].type, ModelType::kEmbedding);
  EXPECT_TRUE(models->downloaded_known);
  ASSERT_EQ(models->loaded.size(), 2u);
  EXPECT_EQ(models->loaded[0].identifier, "q");
  EXPECT_EQ(models->loaded[0].instance_reference, "ref-q");
  EXPECT_EQ(models->loaded[1].type, ModelType::kEmbedding);
  EXPECT_EQ(mini.host().authenticated_total(), 3);
  // The LLM's slot count from its load config (none there: the SDK default).
  EXPECT_EQ(models->loaded[0].parallel_slots, 4);
  EXPECT_EQ(models->loaded[1].parallel_slots, 0);
  // Void parameters are absent keys.
  for (const Json& f : mini.host().received()) {
    if (f.value("endpoint", "") == "getLoadConfig") {
      EXPECT_EQ(f["parameter"]["specifier"]["instanceReference"], "ref-q") << f;
      continue;
    }
    EXPECT_FALSE(f.contains("parameter")) << f;
  }

  // A second listing reuses the three sockets.
  ASSERT_TRUE(driver->ListModels(Ctx()).ok());
  EXPECT_EQ(mini.host().authenticated_total(), 3);
}

TEST(Unary, GuestIdentityOnEverySocket) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  ASSERT_TRUE(driver->ListModels(Ctx()).ok());
  std::vector<Json> auth = mini.auth_packets();
  ASSERT_EQ(auth.size(), 3u);
  for (const Json& a : auth) {
    EXPECT_EQ(a["authVersion"], 1);
    EXPECT_EQ(a["clientIdentifier"].get<std::string>().rfind("guest:", 0), 0u);
    EXPECT_EQ(a["clientIdentifier"], auth[0]["clientIdentifier"]);  // one identity per driver
    EXPECT_EQ(a["clientPasskey"], auth[0]["clientPasskey"]);
  }
}

TEST(Unary, ApiTokenIsSplitAndAWrongOneIsUnauthenticatedWithoutAStorm) {
  MiniHost mini;
  mini.required_identifier = "AbCd1234";
  auto good = MakeDriver(mini.host().base_url(), "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST");
  ASSERT_TRUE(good->Tokenize(Ctx(), "q", "ab").ok());
  EXPECT_EQ(mini.auth_packets().back()["clientPasskey"], "ABCDEFGHIJKLMNOPQRST");

  SdkWsDriver::Options options;
  options.initial_backoff = absl::Seconds(30);  // no retry within this test
  auto bad = MakeDriver(mini.host().base_url(), "sk-lm-Wrong123:ABCDEFGHIJKLMNOPQRST", options);
  absl::StatusOr<std::vector<int>> r = bad->Tokenize(Ctx(), "q", "ab");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_NE(r.status().message().find("Invalid passkey or identifier"), absl::string_view::npos);
  int attempts = mini.host().auth_attempts();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(bad->Tokenize(Ctx(), "q", "ab").status().code(), absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(bad->Probe(Ctx()).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(mini.host().auth_attempts(), attempts + 1);  // + the probe's /system socket only
}

TEST(Unary, MalformedTokenFailsCreate) {
  SdkWsDriver::Options options;
  options.host.api_token = "sk-lm-short";
  EXPECT_EQ(SdkWsDriver::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.host.api_token = "";
  options.host.base_url = "ftp://x";
  EXPECT_EQ(SdkWsDriver::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Unary, LoadReportsProgressOnTheCallingThreadAndSendsTheSdkKeys) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  LoadParams params;
  params.model_key = "qwen/qwen3-4b";
  params.identifier = "my-qwen";
  params.context_length = 8192;
  params.ttl = absl::Minutes(5);
  std::vector<double> progress;
  std::thread::id caller = std::this_thread::get_id();
  bool same_thread = true;
  absl::StatusOr<InstanceInfo> info = driver->Load(Ctx(), params, [&](double p) {
    progress.push_back(p);
    same_thread = same_thread && std::this_thread::get_id() == caller;
  });
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->identifier, "my-qwen");
  EXPECT_EQ(info->type, ModelType::kLlm);
  EXPECT_EQ(info->ttl, absl::Minutes(5));
  EXPECT_EQ(info->instance_reference, "ref-my-qwen");
  EXPECT_TRUE(same_thread);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 1.0);  // progress may be coalesced, never reordered
  Json create;
  for (const Json& f : mini.host().received()) {
    if (f["type"] == "channelCreate") create = f;
  }
  EXPECT_EQ(create["creationParameter"]["ttlMs"], 300000);
  EXPECT_EQ(create["creationParameter"]["loadConfigStack"]["layers"][0]["config"]["fields"].size(), 4u);
  // The model's namespace was looked up first; the slot count is read from the load config after.
  std::vector<std::string> paths = mini.paths();
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[0], "/system listDownloadedModels");
  EXPECT_EQ(paths[1], "/llm loadModel");
  EXPECT_EQ(paths[2], "/llm getLoadConfig");
  EXPECT_EQ(info->parallel_slots, 4);  // no numParallelSessions in the config: the SDK default
}

TEST(Unary, EmbeddingModelsLoadOnTheEmbeddingNamespace) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  ASSERT_TRUE(driver->ListModels(Ctx()).ok());  // learns the types: no extra lookup
  LoadParams params;
  params.model_key = "nomic";
  params.context_length = 512;
  absl::StatusOr<InstanceInfo> info = driver->Load(Ctx(), params, nullptr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, ModelType::kEmbedding);
  EXPECT_EQ(mini.paths().back(), "/embedding loadModel");
  Json create = mini.host().received().back();
  EXPECT_EQ(create["creationParameter"]["loadConfigStack"]["layers"][0]["config"]["fields"][0]["key"],
            "embedding.load.contextLength");
}

TEST(Unary, LoadOfAnUnknownModelIsNotFound) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  LoadParams params;
  params.model_key = "no/such-model";
  absl::StatusOr<InstanceInfo> info = driver->Load(Ctx(), params, nullptr);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound) << info.status();
}

TEST(Unary, LoadCancelSendsCancelAndReturnsCancelled) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  LoadParams params;
  params.model_key = "qwen/qwen3-4b";  // no identifier: the mini host never finishes
  CallContext ctx = Ctx();
  ctx.cancel = std::make_shared<CancelToken>();
  absl::StatusOr<InstanceInfo> info = driver->Load(ctx, params, [&](double p) {
    if (p >= 1.0) ctx.cancel->Cancel();
  });
  EXPECT_EQ(info.status().code(), absl::StatusCode::kCancelled) << info.status();
  Json last = mini.host().received().back();
  EXPECT_EQ(last["message"]["type"], "cancel");
}

TEST(Unary, LoadDeadlineCancelsUpstream) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  LoadParams params;
  params.model_key = "qwen/qwen3-4b";
  absl::StatusOr<InstanceInfo> info = driver->Load(Ctx(absl::Milliseconds(300)), params, nullptr);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kDeadlineExceeded) << info.status();
  EXPECT_EQ(mini.host().received().back()["message"]["type"], "cancel");
}

TEST(Unary, UnloadFindsTheNamespaceAndReportsNotFound) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  EXPECT_TRUE(driver->Unload(Ctx(), "q").ok());
  EXPECT_TRUE(driver->Unload(Ctx(), "nomic").ok());  // llm says NOT_FOUND, embedding unloads
  absl::Status s = driver->Unload(Ctx(), "ghost");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("ghost"), absl::string_view::npos);
  Json unload = mini.host().received()[0];
  EXPECT_EQ(unload["parameter"], Json::parse(R"({"identifier":"q","deviceIdentifier":null})"));
}

TEST(Unary, EmbedPipelinesOneCallPerInputAndKeepsOrder) {
  // Answers only once all calls arrived, in reverse order.
  absl::Mutex mu;
  std::vector<std::pair<std::shared_ptr<FakeSession>, Json>> pending;
  FakeHost host([&](const std::shared_ptr<FakeSession>& s, const Json& f) {
    absl::MutexLock lock(&mu);
    pending.emplace_back(s, f);
    if (pending.size() < 5) return;
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
      std::string text = it->second["parameter"]["inputString"];
      it->first->Send(RpcResult(it->second, Json{{"embedding", {static_cast<double>(text.size())}}}));
    }
    pending.clear();  // sessions must not outlive the FakeHost
  });
  auto driver = MakeDriver(host.base_url());
  absl::StatusOr<EmbedResult> r = driver->Embed(Ctx(), "nomic", {"a", "bb", "ccc", "dddd", "eeeee"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->embeddings.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r->embeddings[i], std::vector<float>{float(i + 1)});
  EXPECT_EQ(host.authenticated_total(), 1);
  EXPECT_EQ(host.received()[0]["parameter"]["modelSpecifier"]["query"]["identifier"], "nomic");
}

TEST(Unary, LargeEmbeddingsArriveWhole) {
  FakeHost host([](const std::shared_ptr<FakeSession>& s, const Json& f) {
    s->Send(RpcResult(f, Json{{"embedding", std::vector<double>(200000, 0.125)}}));
  });
  auto driver = MakeDriver(host.base_url());
  absl::StatusOr<EmbedResult> r = driver->Embed(Ctx(), "nomic", {"x"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->embeddings[0].size(), 200000u);
}

TEST(Unary, TokenizeAndCountTokens) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  absl::StatusOr<std::vector<int>> tokens = driver->Tokenize(Ctx(), "q", "AB");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(*tokens, (std::vector<int>{65, 66}));
  absl::StatusOr<int> count = driver->CountTokens(Ctx(), "q", "hello");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 5);
  // An embedding model unknown to the driver: llm says NOT_FOUND, embedding answers.
  count = driver->CountTokens(Ctx(), "nomic", "abc");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 3);
  EXPECT_EQ(driver->Tokenize(Ctx(), "ghost", "x").status().code(), absl::StatusCode::kNotFound);
}

TEST(Unary, KeepAliveIsAnsweredAndMalformedFramesAreIgnored) {
  // The host answers the call only once the keepAlive was acknowledged, so the call's success
  // proves the ack (checking received() after the call raced the ack in flight: CI failed once).
  Json pending;  // the script runs on the fake host's single io thread
  FakeHost host([&pending](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (f["type"] == "keepAliveAck" && !pending.is_null()) {
      s->Send(RpcResult(pending, Json{{"tokenCount", 2}}));
      pending = nullptr;
      return;
    }
    if (f["type"] != "rpcCall") return;
    pending = f;
    s->Send(Json{{"type", "keepAlive"}});
    s->SendRaw("this is not json");
    s->Send(Json{{"type", "communicationWarning"}, {"warning", "careful"}});
    s->Send(Json{{"type", "rpcResult"}, {"callId", 999}, {"result", 1}});  // unknown call
  });
  auto driver = MakeDriver(host.base_url());
  absl::StatusOr<int> count = driver->CountTokens(Ctx(absl::Seconds(5)), "q", "hi");
  ASSERT_TRUE(count.ok()) << count.status() << " (a DEADLINE_EXCEEDED means no keepAliveAck)";
  EXPECT_EQ(*count, 2);
}

TEST(Unary, UnaryDeadlineAndCancel) {
  FakeHost host([](const std::shared_ptr<FakeSession>&, const Json&) {});  // never answers
  auto driver = MakeDriver(host.base_url());
  EXPECT_EQ(driver->CountTokens(Ctx(absl::Milliseconds(200)), "q", "x").status().code(),
            absl::StatusCode::kDeadlineExceeded);
  CallContext ctx = Ctx();
  ctx.cancel = std::make_shared<CancelToken>();
  std::thread canceller([&] {
    // Cancel once the call is on the wire.
    while (host.received().size() < 2) std::this_thread::yield();
    ctx.cancel->Cancel();
  });
  EXPECT_EQ(driver->Tokenize(ctx, "q", "x").status().code(), absl::StatusCode::kCancelled);
  canceller.join();
}

TEST(Unary, IdempotentCallsAreRetriedOnALostSocketButUnloadIsNot) {
  std::atomic<int> calls{0};
  FakeHost host([&calls](const std::shared_ptr<FakeSession>& s, const Json& f) {
    if (calls++ % 2 == 0) return s->Drop();  // every other call loses its socket
    if (IsCall(f, "countTokens")) return s->Send(RpcResult(f, Json{{"tokenCount", 7}}));
    s->Send(RpcResult(f, std::nullopt));
  });
  auto driver = MakeDriver(host.base_url());
  absl::StatusOr<int> count = driver->CountTokens(Ctx(), "q", "x");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 7);
  EXPECT_EQ(host.authenticated_total(), 2);
  calls = 0;
  EXPECT_EQ(driver->Unload(Ctx(), "q").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);

  SdkWsDriver::Options no_retries;
  no_retries.host.max_retries = 0;
  auto strict = MakeDriver(host.base_url(), "", no_retries);
  calls = 0;
  EXPECT_EQ(strict->CountTokens(Ctx(), "q", "x").status().code(), absl::StatusCode::kUnavailable);
}

int UnusedPort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when `a` goes away
}

TEST(Unary, UnreachableHostIsUnavailable) {
  auto driver = MakeDriver("http://127.0.0.1:" + std::to_string(UnusedPort()));
  EXPECT_EQ(driver->Probe(Ctx()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(driver->ListModels(Ctx()).status().code(), absl::StatusCode::kUnavailable);
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("q", "x"), obs);
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kUnavailable);
}

TEST(Unary, SilentHostTimesOutConnecting) {
  // Accepts TCP connections and never answers the WebSocket upgrade.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  SdkWsDriver::Options options;
  options.host.base_url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  options.host.connect_timeout = absl::Milliseconds(200);
  auto driver = SdkWsDriver::Create(options);
  ASSERT_TRUE(driver.ok());
  absl::Time start = absl::Now();
  absl::Status s = (*driver)->Probe(Ctx());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("timed out"), absl::string_view::npos) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(Unary, PathPrefixOfTheBaseUrlIsKept) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url() + "/proxy/lmstudio/v1");
  ASSERT_TRUE(driver->CountTokens(Ctx(), "q", "abc").ok());
  EXPECT_EQ(mini.paths(), std::vector<std::string>{"/proxy/lmstudio/llm countTokens"});
}

TEST(Unary, ProbeConnectsTheSystemSocket) {
  MiniHost mini;
  auto driver = MakeDriver(mini.host().base_url());
  EXPECT_TRUE(driver->Probe(Ctx()).ok());
  EXPECT_TRUE(driver->Probe(Ctx()).ok());
  EXPECT_EQ(mini.host().authenticated_total(), 1);
}

TEST(Unary, HttpsHostsAreAFailedPrecondition) {
  auto driver = MakeDriver("https://example.invalid:443");
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->Probe(Ctx()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(driver->ListModels(Ctx()).status().code(), absl::StatusCode::kFailedPrecondition);
  auto obs = std::make_shared<Collector>();
  driver->Generate(Ctx(), Chat("q", "x"), obs);
  EXPECT_EQ(obs->Wait().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Registration, RegistersUnderSdkWs) {
  BackendRegistry registry;
  ASSERT_TRUE(RegisterSdkWsDriver(registry).ok());
  EXPECT_EQ(RegisterSdkWsDriver(registry).code(), absl::StatusCode::kAlreadyExists);
  HostConfig config;
  config.base_url = "http://127.0.0.1:1";
  absl::StatusOr<std::unique_ptr<Driver>> driver = registry.Create("sdk_ws", config);
  ASSERT_TRUE(driver.ok()) << driver.status();
  EXPECT_EQ((*driver)->kind(), DriverKind::kSdk);
  EXPECT_EQ(DriverKindName((*driver)->kind()), "sdk_ws");
  Capabilities c = (*driver)->capabilities();
  EXPECT_TRUE(c.load_progress && c.tokenize && c.inference_stats && c.tool_calls && c.embed);
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws::testing
