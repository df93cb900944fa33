// How the `lms` stand-in finds and talks to LM Studio, as the real CLI does (createClient.ts,
// localAPIServer.ts; shared/reference/lmstudio-protocol.md §5): `--host H --port P` → GET
// /lmstudio-greeting (500 ms), then the SDK WebSocket namespaces on H:P as a "lms-cli-remote-*"
// client; without them → the local API server from the home directory's http-server.json (or
// $LMS_API_SERVER_INFO_PATH) and the five fixed ports, probed with GET /lms-status. The stand-in
// never tries to start LM Studio.
//
// Logger mirrors the CLI's stderr logger (createLogger in logLevel.ts). Not thread-safe: one
// command runs on the main thread.
#ifndef LMGATE_TESTS_EMULATOR_LMS_SESSION_H_
#define LMGATE_TESTS_EMULATOR_LMS_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sdk_ws/connection.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/lms/args.h"

namespace lmgate::lms {

using Json = nlohmann::json;
using backends::sdk_ws::Namespace;
using backends::sdk_ws::RpcRequest;

// stderr logging with the CLI's levels: --quiet silences everything, default hides debug.
class Logger {
 public:
  explicit Logger(const CommandLine& line);
  void Debug(const std::string& text) const;
  void Info(const std::string& text) const;
  void Warn(const std::string& text) const;   // "W " prefix
  void Error(const std::string& text) const;  // "Error: " prefix
  void ErrorWithoutPrefix(const std::string& text) const;

 private:
  int level_;  // 0 debug .. 4 none
};

// findLMStudioHome(), which the real CLI runs when it starts, before any command (even
// `--version`): $LMSTUDIO_HOME if set; else, in the real path of $HOME, the target named by
// .lmstudio-home-pointer, else .cache/lm-studio if it exists, else .lmstudio — and the pointer file
// is then written. A $HOME that does not exist or cannot take the pointer file fails, with the
// text Node prints for the uncaught fs error (main prints it and exits 1, as the real CLI dies).
// Call once, first; LmStudioHome() then returns the directory.
absl::Status InitLmStudioHome();
std::string LmStudioHome();
// A JSON file, or nullopt when it is missing or not JSON.
std::optional<Json> ReadJsonFile(const std::string& path);
// checkHttpServer(): GET http://host:port/lmstudio-greeting answers 200 {"lmstudio":true} within
// 500 ms.
bool CheckHttpServer(const std::string& host, int port);

class Session {
 public:
  // createClient(): resolves the host (printing the CLI's error and returning nullptr when it
  // cannot, after which the command exits 1). Connects lazily.
  static std::unique_ptr<Session> Create(const CommandLine& line, const Logger& log);
  ~Session();

  absl::StatusOr<Json> Call(Namespace ns, const std::string& endpoint,
                            std::optional<Json> parameter = std::nullopt);
  // All at once, results in order.
  absl::StatusOr<std::vector<Json>> CallAll(std::vector<RpcRequest> requests);
  // The `loadModel` channel to its end: the `success` packet's info. `on_update` runs on the
  // calling thread with each new progress value (0..1), and with nullopt every `tick` meanwhile.
  using LoadUpdateFn = std::function<void(std::optional<double> progress)>;
  absl::StatusOr<Json> LoadModel(Namespace ns, Json creation_parameter,
                                 const LoadUpdateFn& on_update = nullptr,
                                 absl::Duration tick = absl::Milliseconds(80));

 private:
  explicit Session(std::unique_ptr<backends::sdk_ws::Connection> connection);
  std::unique_ptr<backends::sdk_ws::Connection> connection_;
};

// An SDK failure as the CLI prints it when a command throws (after "Error: ").
std::string FailureText(const absl::Status& status);

}  // namespace lmgate::lms

#endif  // LMGATE_TESTS_EMULATOR_LMS_SESSION_H_
