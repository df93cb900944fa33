// The SDK WebSocket protocol (§1) of one socket, independent of the WebSocket library: the auth
// handshake, the rpc/channel envelope with per-socket channel state, and the llm / embedding /
// system endpoints. Other namespaces authenticate and then fail every call with rpcError /
// channelError (the reference server would stay silent and hang the client).
//
// Thread-safety: OnMessage() and OnClose() must be called from one logical thread at a time (the
// socket's strand). Channel work runs on Host worker threads and calls SdkTransport::Send() from
// there. The session object is shared with that work and outlives the socket if it must.
#ifndef LMGATE_TESTS_EMULATOR_SDK_SESSION_H_
#define LMGATE_TESTS_EMULATOR_SDK_SESSION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/frame_log.h"
#include "tests/emulator/model_host.h"

namespace lmgate::emulator {

// Implemented by the WebSocket server for one socket.
class SdkTransport {
 public:
  virtual ~SdkTransport() = default;
  // Queues one text frame. Non-blocking, thread-safe; frames queued from one thread keep their
  // order. A no-op once the socket is closed.
  virtual void Send(std::string frame) = 0;
  // abrupt=false: close handshake after pending frames (auth failure). abrupt=true: drop the TCP
  // connection now without a close frame (fault injection).
  virtual void Close(bool abrupt) = 0;
};

// Decides who may connect; shared by all sockets. Thread-safe.
// Without an API token: the open-source FcfsAuthenticator rules (the first socket of a client
// identifier registers its passkey; later sockets must repeat it while any socket of that client
// is open). With an API token "sk-lm-<id>:<passkey>", only that identifier/passkey pair passes.
class SdkAuthenticator {
 public:
  explicit SdkAuthenticator(std::string api_token);
  // OK, or PermissionDenied with the text for {"success":false,"error":...}.
  absl::Status Authenticate(const std::string& client_identifier,
                            const std::string& client_passkey);
  // Called once per successful Authenticate when its socket closes.
  void Release(const std::string& client_identifier);

 private:
  absl::Mutex mu_;
  std::string token_identifier_;  // empty = no token required
  std::string token_passkey_;
  struct Client {
    std::string passkey;
    int sockets = 0;
  };
  std::map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
};

struct SdkServerInfo {
  std::string version = "0.4.0";  // system/version and system/info
  int64_t build = 1;
};

class SdkSession : public std::enable_shared_from_this<SdkSession> {
 public:
  // `ns` is the namespace from the URL path without the slash ("llm", "system", ...). `frames`
  // (may be null, must outlive the session) gets every frame received, and the frames sent when it
  // logs outgoing ones.
  SdkSession(Host* host, SdkAuthenticator* auth, SdkServerInfo info, std::string ns,
             std::shared_ptr<SdkTransport> transport, FrameLog* frames = nullptr);
  ~SdkSession();

  // One text frame from the client. Malformed envelopes and parameters of the wrong JSON type
  // are answered with rpcError / channelError (or a communicationWarning), never an exception.
  void OnMessage(const std::string& text);
  // The socket is gone: cancels every channel of this socket. Idempotent.
  void OnClose();
  // Whether a valid auth packet was accepted (same thread as OnMessage).
  bool authenticated() const { return authenticated_; }

  // Shared by channel observers (defined in the .cc).
  void Send(const nlohmann::json& message);
  void SendChannel(int64_t channel_id, nlohmann::json message);
  void DropConnection();

 private:
  void Dispatch(const nlohmann::json& message, const std::string& text);
  void HandleRpc(const std::string& endpoint, const nlohmann::json& call_id,
                 const nlohmann::json& parameter);
  void HandleChannel(const std::string& endpoint, int64_t channel_id,
                     const nlohmann::json& parameter);
  nlohmann::json Rpc(const std::string& endpoint, const nlohmann::json& parameter,
                     absl::Status* error, bool* void_result);
  void FinishChannel(int64_t channel_id, const Job* job, const absl::Status& status);
  void StartChannelJob(int64_t channel_id,
                       std::function<absl::Status(Job*)> work);

  Host* const host_;
  SdkAuthenticator* const auth_;
  const SdkServerInfo info_;
  const std::string ns_;
  const std::shared_ptr<SdkTransport> transport_;
  FrameLog* const frames_;
  bool authenticated_ = false;  // strand-confined
  bool auth_failed_ = false;    // strand-confined
  std::string client_identifier_;  // strand-confined
  int warnings_sent_ = 0;       // strand-confined

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int64_t, std::shared_ptr<Job>> channels_ ABSL_GUARDED_BY(mu_);
};

// SDK chat history ({"messages":[{role, content:[parts]}]}) → chat messages. Text parts are joined
// with "\n"; toolCallRequest parts become tool_calls; each toolCallResult part becomes a "tool"
// message; file parts are ignored.
std::vector<ChatMessage> MessagesFromSdkHistory(const nlohmann::json& history);

// SerializedError (§1.3) for a status: title and rootTitle, displayData from the status payload.
nlohmann::json SerializeError(const absl::Status& status);

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_SDK_SESSION_H_
