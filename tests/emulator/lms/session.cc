#include "tests/emulator/lms/session.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/http/client.h"
#include "tests/emulator/lms/format.h"

namespace lmgate::lms {
namespace {

using backends::sdk_ws::ClientIdentity;
using backends::sdk_ws::Connection;

// Fixed ports of the always-on local API server (apiServerPorts.ts).
constexpr int kApiServerPorts[] = {41343, 52993, 16141, 39414, 22931};
constexpr int kDefaultServerPort = 1234;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::StatusOr<Json> HttpGetJson(const std::string& host, int port, const std::string& path,
                                 absl::Duration timeout) {
  backends::http::HttpClient::Options o;
  o.base_url = absl::StrCat("http://", host, ":", port);
  o.connect_timeout = timeout;
  o.request_timeout = timeout;
  o.retry.max_retries = 0;
  o.user_agent = "lms";
  auto client = backends::http::HttpClient::Create(std::move(o));
  if (!client.ok()) return client.status();
  backends::CallContext ctx;
  auto response = (*client)->Do(ctx, {"GET", path});
  if (!response.ok()) return response.status();
  Json body = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return absl::InvalidArgumentError("not JSON");
  return body;
}

// getLocalAPIServerStatusAtPortOrThrow(): GET /lms-status answers {package, version} strings.
bool LocalApiServerAt(int port) {
  auto status = HttpGetJson("127.0.0.1", port, "/lms-status", absl::Seconds(3));
  return status.ok() && status->is_object() && status->value("package", Json()).is_string() &&
         status->value("version", Json()).is_string();
}

std::optional<int> PortFromInfoFile(const std::string& path) {
  std::optional<Json> info = ReadJsonFile(path);
  if (!info || !info->is_object() || !(*info)["port"].is_number_integer()) return std::nullopt;
  int port = (*info)["port"].get<int>();
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

std::string Base64Random18() {
  // GuestIdentity() is "guest:" + base64(18 random bytes).
  return backends::sdk_ws::GuestIdentity().identifier.substr(6);
}

// Collects one loadModel channel for the blocked main thread, waking it on each progress packet
// and every `tick` so that it can draw the spinner.
class LoadWaiter final : public backends::sdk_ws::ChannelObserver {
 public:
  void OnMessage(const Json& message, const absl::Status&) override {
    absl::MutexLock lock(&mu_);
    const std::string type = message.is_object() ? StrField(message, "type") : "";
    if (type == "success" && message.contains("info")) info_ = message["info"];
    if (type == "progress" && Field(message, "progress").is_number()) {
      progress_ = Field(message, "progress").get<double>();
      ++progress_seq_;
    }
  }
  void OnClose(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    closed_ = std::move(status);
  }
  absl::StatusOr<Json> Wait(const Session::LoadUpdateFn& on_update, absl::Duration tick) {
    absl::Time next_tick = absl::Now() + tick;
    for (;;) {
      std::optional<double> progress;
      std::optional<absl::StatusOr<Json>> result;
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithDeadline(absl::Condition(this, &LoadWaiter::Wakes), next_tick);
        if (progress_seq_ != seen_seq_) {
          seen_seq_ = progress_seq_;
          progress = progress_;
        }
        if (closed_.has_value()) {
          if (!closed_->ok()) {
            result = *closed_;
          } else if (!info_) {
            result = absl::InternalError("the load ended without success");
          } else {
            result = *info_;
          }
        }
      }
      // Outside the lock: it writes to the terminal. The SDK reports the last progress (100%)
      // before the load resolves, so a progress that came with the end is still shown.
      if (result.has_value()) {
        if (progress.has_value() && on_update) on_update(progress);
        return *std::move(result);
      }
      if (!progress.has_value()) next_tick = absl::Now() + tick;
      if (on_update) on_update(progress);
    }
  }

 private:
  bool Wakes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_.has_value() || progress_seq_ != seen_seq_;
  }

  absl::Mutex mu_;
  std::optional<Json> info_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
  double progress_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t progress_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seen_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

Logger::Logger(const CommandLine& line) {
  const std::string level = line.Get("log-level");
  level_ = 1;
  if (line.Has("quiet")) level_ = 4;
  if (line.Has("verbose")) level_ = 0;
  const char* names[] = {"debug", "info", "warn", "error", "none"};
  for (int i = 0; i < 5; ++i) {
    if (level == names[i]) level_ = i;
  }
}

void Logger::Debug(const std::string& text) const {
  if (level_ <= 0) std::cerr << "D " << text << "\n";
}
void Logger::Info(const std::string& text) const {
  if (level_ <= 1) std::cerr << text << "\n";
}
void Logger::Warn(const std::string& text) const {
  if (level_ <= 2) std::cerr << "W " << text << "\n";
}
void Logger::Error(const std::string& text) const {
  if (level_ <= 3) std::cerr << "Error: " << text << "\n";
}
void Logger::ErrorWithoutPrefix(const std::string& text) const {
  if (level_ <= 3) std::cerr << text << "\n";
}

namespace {

std::string& HomeDirectory() {
  static std::string* home = new std::string();
  return *home;
}

// Node's message for a failed fs call: "ENOTDIR: not a directory, open '/x/.lmstudio-home-pointer'"
// and the error's properties, as an uncaught exception prints them.
absl::Status NodeFsError(int err, const std::string& syscall, const std::string& path) {
  struct Code {
    int err;
    const char* code;
    const char* text;
  };
  static constexpr Code kCodes[] = {{EACCES, "EACCES", "permission denied"},
                                    {ENOENT, "ENOENT", "no such file or directory"},
                                    {ENOTDIR, "ENOTDIR", "not a directory"},
                                    {EROFS, "EROFS", "read-only file system"},
                                    {EPERM, "EPERM", "operation not permitted"},
                                    {EISDIR, "EISDIR", "illegal operation on a directory"},
                                    {ENOSPC, "ENOSPC", "no space left on device"}};
  std::string code = "EIO", text = "i/o error";
  for (const Code& c : kCodes) {
    if (c.err == err) code = c.code, text = c.text;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("Error: ", code, ": ", text, ", ", syscall, " '", path, "'\n{\n  errno: -", err,
                   ",\n  code: '", code, "',\n  syscall: '", syscall, "',\n  path: '", path,
                   "'\n}"));
}

}  // namespace

absl::Status InitLmStudioHome() {
  const char* env_home = getenv("LMSTUDIO_HOME");
  if (env_home != nullptr && *env_home != '\0') {
    char* resolved = realpath(env_home, nullptr);  // path.resolve() does not need it to exist
    HomeDirectory() = resolved != nullptr ? resolved : env_home;
    free(resolved);
    return absl::OkStatus();
  }
  const char* home_env = getenv("HOME");
  const std::string home = home_env != nullptr && *home_env != '\0' ? home_env : "/";
  char* resolved = realpath(home.c_str(), nullptr);
  if (resolved == nullptr) return NodeFsError(errno, "lstat", home);
  const std::string real_home = resolved;
  free(resolved);
  const std::string pointer_path = real_home + "/.lmstudio-home-pointer";
  if (Exists(pointer_path)) {
    std::ifstream pointer(pointer_path);
    std::stringstream text;
    text << pointer.rdbuf();
    HomeDirectory() = std::string(absl::StripAsciiWhitespace(text.str()));
    return absl::OkStatus();
  }
  const std::string cache_home = real_home + "/.cache/lm-studio";
  HomeDirectory() = Exists(cache_home) ? cache_home : real_home + "/.lmstudio";
  FILE* f = fopen(pointer_path.c_str(), "w");
  if (f == nullptr) return NodeFsError(errno, "open", pointer_path);
  const bool written = fputs(HomeDirectory().c_str(), f) >= 0;
  if (fclose(f) != 0 || !written) return NodeFsError(errno, "write", pointer_path);
  return absl::OkStatus();
}

std::string LmStudioHome() { return HomeDirectory(); }

std::optional<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  Json j = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool CheckHttpServer(const std::string& host, int port) {
  auto greeting = HttpGetJson(host, port, "/lmstudio-greeting", absl::Milliseconds(500));
  return greeting.ok() && greeting->is_object() && Field(*greeting, "lmstudio") == true;
}

std::unique_ptr<Session> Session::Create(const CommandLine& line, const Logger& log) {
  std::string host = line.Get("host");
  std::optional<int> port;
  if (line.Has("port")) port = static_cast<int>(JsNumber(line.Get("port")));
  bool remote = line.Has("host");
  if (!remote) {
    host = "127.0.0.1";
  } else if (absl::StrContains(host, "://")) {
    log.Error("Host should not include the protocol.");
    return nullptr;
  } else if (absl::StrContains(host, ":")) {
    log.Error("Host should not include the port number. Use --port instead.");
    return nullptr;
  }
  ClientIdentity identity;
  if (remote) {
    identity.identifier = absl::StrCat("lms-cli-remote-", Base64Random18());
    identity.passkey = Base64Random18();
  } else {
    // A production build authenticates with the key LM Studio leaves in its home directory;
    // without one, every stand-in run presents the same passkey so concurrent runs agree.
    identity.identifier = "lms-cli";
    std::ifstream key(LmStudioHome() + "/.internal/lms-key-2");
    std::stringstream text;
    if (key) text << key.rdbuf();
    identity.passkey = absl::StrCat("lms-stand-in", absl::StripAsciiWhitespace(text.str()));
  }
  if (!port && host == "127.0.0.1") {
    const char* info_path = getenv("LMS_API_SERVER_INFO_PATH");
    std::optional<int> found;
    if (info_path != nullptr) {
      std::optional<int> p = PortFromInfoFile(info_path);
      if (p && LocalApiServerAt(*p)) found = p;
    } else {
      std::vector<int> candidates;
      if (auto p = PortFromInfoFile(LmStudioHome() + "/.internal/http-server.json")) {
        candidates.push_back(*p);
      }
      candidates.insert(candidates.end(), std::begin(kApiServerPorts), std::end(kApiServerPorts));
      for (int p : candidates) {
        if (LocalApiServerAt(p)) {
          found = p;
          break;
        }
      }
    }
    if (!found) {
      log.Error(info_path == nullptr
                    ? "Failed to start or connect to local LM Studio API server."
                    : absl::StrCat("Failed to connect using ", info_path, "."));
      return nullptr;
    }
    port = found;
  } else {
    if (!port) port = kDefaultServerPort;
    log.Debug(absl::StrCat("Connecting to server at ", host, ":", *port));
    if (!CheckHttpServer(host, *port)) {
      log.Error(absl::StrCat("The server does not appear to be running at ", host, ":", *port,
                             ". Please make sure the server is running and accessible at the "
                             "specified address."));
      return nullptr;
    }
  }
  Connection::Options o;
  o.host = host;
  o.port = *port;
  o.identity = std::move(identity);
  auto connection = Connection::Create(std::move(o));
  if (!connection.ok()) {
    log.Error(std::string(connection.status().message()));
    return nullptr;
  }
  return std::unique_ptr<Session>(new Session(*std::move(connection)));
}

Session::Session(std::unique_ptr<Connection> connection) : connection_(std::move(connection)) {}
Session::~Session() = default;

absl::StatusOr<Json> Session::Call(Namespace ns, const std::string& endpoint,
                                   std::optional<Json> parameter) {
  return connection_->Call({ns, endpoint, std::move(parameter)}, absl::InfiniteFuture(), nullptr);
}

absl::StatusOr<std::vector<Json>> Session::CallAll(std::vector<RpcRequest> requests) {
  return connection_->CallAll(std::move(requests), absl::InfiniteFuture(), nullptr);
}

absl::StatusOr<Json> Session::LoadModel(Namespace ns, Json creation_parameter,
                                        const LoadUpdateFn& on_update, absl::Duration tick) {
  auto waiter = std::make_shared<LoadWaiter>();
  std::shared_ptr<backends::sdk_ws::Channel> channel = connection_->OpenChannel(
      ns, "loadModel", std::move(creation_parameter), absl::InfiniteFuture(), waiter);
  return waiter->Wait(on_update, tick);
}

std::string FailureText(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    return absl::StrCat("Failed to authenticate: ", status.message());
  }
  return std::string(status.message());
}

}  // namespace lmgate::lms
