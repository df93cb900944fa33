// Test helpers around the `lms` stand-in: running it, scratch home directories, and a port where
// nothing listens.
#ifndef LMGATE_TESTS_EMULATOR_LMS_TEST_UTIL_H_
#define LMGATE_TESTS_EMULATOR_LMS_TEST_UTIL_H_

#include <string>
#include <utility>
#include <vector>

namespace lmgate::lms::testing {

struct LmsRun {
  int code = -1;  // exit code (-1 when it did not exit normally)
  std::string out;
  std::string err;
};

// Runs `binary args...` to completion (30 s cap) with `env` added to the environment.
LmsRun RunLms(const std::string& binary, const std::vector<std::string>& args,
              const std::vector<std::pair<std::string, std::string>>& env = {});

// A fresh empty directory under $TEST_TMPDIR (a scratch HOME: the CLI reads its home directory).
std::string ScratchDir();

// The contents of `path`, or "" when it cannot be read.
std::string ReadFile(const std::string& path);

// Writes `text` to `path`, creating parent directories.
void WriteFile(const std::string& path, const std::string& text);

// A 127.0.0.1 port bound by a socket that does not listen, so connecting to it is refused at
// once (no race with other tests picking the port). Closed on destruction.
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace lmgate::lms::testing

#endif  // LMGATE_TESTS_EMULATOR_LMS_TEST_UTIL_H_
