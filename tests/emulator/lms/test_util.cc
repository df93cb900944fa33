#include "tests/emulator/lms/test_util.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/cli/subprocess.h"

namespace lmgate::lms::testing {

LmsRun RunLms(const std::string& binary, const std::vector<std::string>& args,
              const std::vector<std::pair<std::string, std::string>>& env) {
  backends::cli::ProcessSpec spec;
  spec.program = binary;
  spec.args = args;
  spec.env = env;
  spec.deadline = absl::Now() + absl::Seconds(30);
  LmsRun run;
  auto result = backends::cli::RunProcess(spec);
  if (!result.ok()) {
    run.err = result.status().ToString();
    return run;
  }
  run.code = result->exit_code;
  run.out = result->out;
  run.err = result->err;
  return run;
}

std::string ScratchDir() {
  static std::atomic<int> counter{0};
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/scratch-", getpid(), "-",
                                 counter.fetch_add(1));
  mkdir(dir.c_str(), 0700);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    mkdir(path.substr(0, slash).c_str(), 0700);
  }
  std::ofstream(path) << text;
}

RefusingPort::RefusingPort() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace lmgate::lms::testing
