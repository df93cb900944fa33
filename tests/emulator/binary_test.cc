// The lmstudio_emulator binary: --port 0 prints one "listening on" line, serves, exits cleanly on
// SIGTERM and SIGINT, and rejects bad flags.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/emulator/test_client.h"

extern char** environ;

namespace lmgate::emulator {
namespace {

std::string g_binary;  // from argv[1]: $(rootpath :lmstudio_emulator)

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

Child Spawn(std::vector<std::string> args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  args.insert(args.begin(), g_binary);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  EXPECT_EQ(posix_spawn(&c.pid, g_binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  c.out = fdopen(fds[0], "r");
  return c;
}

int WaitExit(const Child& c) {
  int status = 0;
  waitpid(c.pid, &status, 0);
  fclose(c.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int ReadPort(const Child& c) {
  char line[256] = {0};
  if (fgets(line, sizeof(line), c.out) == nullptr) return -1;
  int port = -1;
  if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) return -1;
  return port;
}

TEST(Binary, PortZeroServesAndStopsOnSigterm) {
  Child c = Spawn({"--port", "0", "--ttft_ms", "0", "--tokens_per_second", "0"});
  const int port = ReadPort(c);
  ASSERT_GT(port, 0);
  testing::HttpClient http(port);
  EXPECT_EQ(http.Get("/lmstudio-greeting").json(), nlohmann::json({{"lmstudio", true}}));
  auto ws = testing::WsClient::Connect(port, "system");
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ((*ws)->Auth()["success"], true);
  EXPECT_EQ((*ws)->Rpc("listDownloadedModels")["result"].size(), 5u);
  kill(c.pid, SIGTERM);
  char rest[256];
  EXPECT_EQ(fgets(rest, sizeof(rest), c.out), nullptr);  // exactly one line on stdout
  EXPECT_EQ(WaitExit(c), 0);
}

TEST(Binary, SigintAndFlags) {
  Child c = Spawn({"--port", "0", "--jit=false", "--api_token",
                   "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST", "--http_error_count", "1"});
  const int port = ReadPort(c);
  ASSERT_GT(port, 0);
  testing::HttpClient http(port);
  EXPECT_EQ(http.Get("/v1/models").status, 401);
  EXPECT_EQ(http.Get("/v1/models", "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST").status, 503);
  EXPECT_EQ(http.Get("/v1/models", "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST").json()["data"],
            nlohmann::json::array());  // JIT off: only loaded models
  kill(c.pid, SIGINT);
  EXPECT_EQ(WaitExit(c), 0);
}

TEST(Binary, RejectsBadConfiguration) {
  Child bad_token = Spawn({"--port", "0", "--api_token", "nope"});
  EXPECT_NE(WaitExit(bad_token), 0);
  Child bad_catalogue = Spawn({"--port", "0", "--catalogue", "/nonexistent.json"});
  EXPECT_NE(WaitExit(bad_catalogue), 0);
}

TEST(Binary, LogFramesAndIdentifierRows) {
  const std::string path = ::testing::TempDir() + "/binary_frames.jsonl";
  std::remove(path.c_str());
  Child c = Spawn({"--port", "0", "--log_frames=" + path, "--v0_identifier_rows"});
  const int port = ReadPort(c);
  ASSERT_GT(port, 0);
  testing::HttpClient http(port);
  EXPECT_EQ(http.Get("/__emulator/settings").json()["v0_identifier_rows"], true);
  EXPECT_EQ(http.Get("/api/v0/models").status, 200);
  EXPECT_EQ(http.Get("/__emulator/frames").json()["frames"].size(), 1u);
  kill(c.pid, SIGTERM);
  EXPECT_EQ(WaitExit(c), 0);
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
  EXPECT_EQ(entry["path"], "/api/v0/models") << line;
  EXPECT_FALSE(std::getline(in, line)) << "control requests are not logged: " << line;

  Child unwritable = Spawn({"--port", "0", "--log_frames=/nonexistent-dir/frames.jsonl"});
  EXPECT_NE(WaitExit(unwritable), 0);
}

}  // namespace
}  // namespace lmgate::emulator

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: binary_test PATH_TO_lmstudio_emulator\n");
    return 2;
  }
  lmgate::emulator::g_binary = argv[1];
  return RUN_ALL_TESTS();
}
