// The SDK WebSocket envelope (shared/reference/lmstudio-protocol.md §1.2-1.3): the auth packet,
// client→server frames, server→client frame decoding, and SerializedError → absl::Status.
//
// Pure functions, no I/O, no Beast: every decoder accepts arbitrary bytes and never throws (the
// input comes from the network and is fuzzed). Thread-safe (no shared state except the random
// source of GuestIdentity(), which is internally locked).
#ifndef LMGATE_BACKENDS_SDK_WS_PROTOCOL_H_
#define LMGATE_BACKENDS_SDK_WS_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lmgate::backends::sdk_ws {

using Json = nlohmann::json;

// The namespaces lmgate uses; one WebSocket each, at `<base>/<name>`.
// kRepository only serves lmLinkStatus (the `lms` stand-in calls it like the real CLI).
enum class Namespace { kLlm = 0, kEmbedding = 1, kSystem = 2, kRepository = 3 };
inline constexpr int kNumNamespaces = 4;
absl::string_view NamespaceName(Namespace ns);

// --- JSON helpers (never throw) --------------------------------------------------------------

// Parses `text` (backends/json.h: nested at most kMaxJsonDepth levels); INVALID_ARGUMENT naming
// `what` if it is not JSON or nested deeper.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);
// Serialises compactly; invalid UTF-8 in strings is replaced (U+FFFD) rather than thrown on.
std::string DumpJson(const Json& value);
// The typed getters every driver shares (backends/json.h: a null member is absent, integers are
// integral numbers in int64 range, strings never become numbers), under this driver's names.
// Member `key` of `object`, or nullptr when `object` is not an object, lacks it or it is null.
const Json* Member(const Json& object, absl::string_view key);
// Typed member look-ups: the fallback when absent or of another type.
std::string StringMember(const Json& object, absl::string_view key,
                         absl::string_view fallback = "");
std::optional<double> NumberMember(const Json& object, absl::string_view key);
// An integer, or an integral float within int64 range (JS numbers), else nullopt.
std::optional<int64_t> AsInt(const Json& value);
std::optional<int64_t> IntMember(const Json& object, absl::string_view key);
bool BoolMember(const Json& object, absl::string_view key, bool fallback = false);

// --- Authentication (§1.2) -------------------------------------------------------------------

struct ClientIdentity {
  std::string identifier;
  std::string passkey;
};

// Splits an LM Studio API token "sk-lm-<8 alnum>:<20 alnum>" into identifier and passkey.
// INVALID_ARGUMENT (without echoing the secret) for any other shape.
absl::StatusOr<ClientIdentity> IdentityFromApiToken(absl::string_view token);
// "guest:" + base64(18 random bytes), passkey base64(18 random bytes), as the JS SDK does.
ClientIdentity GuestIdentity();
// {"authVersion":1,"clientIdentifier":...,"clientPasskey":...}
std::string EncodeAuthPacket(const ClientIdentity& identity);
// The host's single reply: OK for {"success":true}; UNAUTHENTICATED with the host's error text
// for {"success":false,...}; UNAVAILABLE for anything else (not an LM Studio host?).
absl::Status DecodeAuthReply(absl::string_view frame);

// --- Client → server frames (§1.3) -----------------------------------------------------------
// Absent optionals become absent keys, never null.

std::string EncodeRpcCall(int64_t call_id, absl::string_view endpoint,
                          const std::optional<Json>& parameter);
std::string EncodeChannelCreate(int64_t channel_id, absl::string_view endpoint,
                                const std::optional<Json>& creation_parameter);
std::string EncodeChannelSend(int64_t channel_id, const Json& message);
std::string EncodeKeepAliveAck();

// --- Server → client frames ------------------------------------------------------------------

struct ServerMessage {
  enum class Type {
    kRpcResult,     // id = callId, payload = result (null when absent: void)
    kRpcError,      // id = callId, status = the decoded SerializedError
    kChannelSend,   // id = channelId, payload = message
    kChannelAck,    // id = channelId
    kChannelClose,  // id = channelId
    kChannelError,  // id = channelId, status = the decoded SerializedError
    kCommunicationWarning,  // text = warning (+ " [kind]")
    kKeepAlive,
    kKeepAliveAck,
    kOther,  // signals and anything newer: text = the type
  };
  Type type = Type::kOther;
  int64_t id = -1;
  Json payload;
  absl::Status status;
  std::string text;
};

// INVALID_ARGUMENT for frames that are not JSON objects with a string `type`, or whose call/channel
// messages lack an integer id.
absl::StatusOr<ServerMessage> DecodeServerMessage(absl::string_view frame);

// --- Errors ----------------------------------------------------------------------------------

// SerializedError {title, rootTitle?, cause?, suggestion?, displayData?:{code}} → status.
// Codes: displayData.code generic.noModelMatchingQuery / identifierNotFound / pathNotFound /
// presetNotFound / specificModelUnloaded → NOT_FOUND; domainMismatch → INVALID_ARGUMENT;
// engineDoesNotSupportFeature / missingRuntimeExtension → FAILED_PRECONDITION. Without a code,
// titles such as "Cannot find model ..." / "... not found" → NOT_FOUND, "... already loaded" →
// ALREADY_EXISTS, "out of memory" / "insufficient ..." → RESOURCE_EXHAUSTED; else UNKNOWN.
// The message is rootTitle (or title), then ": cause" when present.
absl::Status StatusFromSerializedError(const Json& error);

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_PROTOCOL_H_
