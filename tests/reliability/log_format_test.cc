// The real lmgate binary's stdout as an operator's log collector reads it: with log_format json
// every line is one JSON object (start-up lines, component loggers, access and lifecycle records),
// and the access record of a traced call carries its trace id.
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/bench/subprocess.h"
#include "tests/emulator/emulator.h"
#include "tests/util/time_scale.h"

namespace lmgate::reliability {
namespace {

using bench::Subprocess;
using testutil::Scaled;

constexpr char kLmgate[] = "services/lmgate";

TEST(LogFormatTest, JsonMakesEveryStdoutLineAJsonObject) {
  auto emu = emulator::Emulator::Create({});
  ASSERT_TRUE(emu.ok()) << emu.status();
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir ? dir : "/tmp", "/lmgate-log-format.json");
  nlohmann::json c = {{"listen", "127.0.0.1:0"},
                      {"lmstudio", {{"url", (*emu)->http_url()}}},
                      {"drivers", {"rest", "openai"}},
                      {"default_model", "qwen/qwen3-4b"},
                      {"metrics_listen", ""},
                      {"log_level", "info"},
                      {"log_format", "json"},
                      {"shutdown_grace_seconds", 2}};
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  const std::string text = c.dump();
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  auto proc = Subprocess::Start(
      {"/bin/sh", "-c", absl::StrCat("exec ", kLmgate, " --config=", path, " 2>/dev/null")});
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto line = (*proc)->WaitForLine("lmgate listening on", Scaled(absl::Seconds(30)));
  ASSERT_TRUE(line.ok()) << line.status() << "\n" << (*proc)->Tail();
  const size_t colon = line->rfind(':', line->find(" (LM Studio"));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(line->substr(colon + 1, line->find(' ', colon) - colon - 1), &port))
      << *line;

  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto inference = v1::Inference::NewStub(channel);
  auto models = v1::ModelManager::NewStub(channel);
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "bin-chat");
    ctx.AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::ChatRequest req;
    req.mutable_sampling()->set_max_tokens(4);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("hi");
    auto reader = inference->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "bin-unload");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::UnloadModelRequest req;
    req.set_model("qwen/qwen3-4b");
    v1::UnloadModelResponse resp;
    grpc::Status st = models->UnloadModel(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto chat = (*proc)->WaitForLine("\"request_id\":\"bin-chat\"", Scaled(absl::Seconds(10)));
  ASSERT_TRUE(chat.ok()) << chat.status() << "\n" << (*proc)->Tail();
  auto j = nlohmann::json::parse(*chat, nullptr, false);
  ASSERT_TRUE(j.is_object()) << *chat;
  EXPECT_EQ(j.value("trace_id", ""), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(j.value("method", ""), "Chat");
  ASSERT_TRUE((*proc)->WaitForLine("\"event\":\"unloaded\"", Scaled(absl::Seconds(10))).ok())
      << (*proc)->Tail();
  EXPECT_EQ((*proc)->Stop(Scaled(absl::Seconds(10))), 0);
  const std::string tail = (*proc)->Tail();
  int lines = 0;
  for (size_t start = 0; start < tail.size();) {
    size_t end = tail.find('\n', start);
    if (end == std::string::npos) end = tail.size();
    const std::string l = tail.substr(start, end - start);
    start = end + 1;
    if (l.empty()) continue;
    ++lines;
    EXPECT_TRUE(nlohmann::json::parse(l, nullptr, false).is_object()) << "not JSON: " << l;
  }
  EXPECT_GE(lines, 4) << tail;  // listening, access x2, lifecycle, signal/stopped
  (*emu)->Shutdown();
}

}  // namespace
}  // namespace lmgate::reliability
