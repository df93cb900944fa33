#include "backends/sdk_ws/protocol.h"

#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/json.h"

namespace lmgate::backends::sdk_ws {
namespace {

bool IsAlnum(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string RandomBase64(size_t bytes) {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* engine ABSL_GUARDED_BY(mu) = nullptr;
  std::string raw(bytes, '\0');
  {
    absl::MutexLock lock(&mu);
    if (engine == nullptr) {
      std::random_device rd;
      std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
      engine = new std::mt19937_64(seq);
    }
    for (char& c : raw) c = static_cast<char>((*engine)() & 0xff);
  }
  return absl::Base64Escape(raw);
}

std::optional<int64_t> IdOf(const Json& frame, absl::string_view key) {
  return IntMember(frame, key);
}

// The code from displayData.code, when the error carries one.
absl::StatusCode CodeForDisplayCode(absl::string_view code) {
  if (code == "generic.noModelMatchingQuery" || code == "generic.identifierNotFound" ||
      code == "generic.pathNotFound" || code == "generic.presetNotFound" ||
      code == "generic.specificModelUnloaded") {
    return absl::StatusCode::kNotFound;
  }
  if (code == "generic.domainMismatch") return absl::StatusCode::kInvalidArgument;
  if (code == "generic.engineDoesNotSupportFeature" ||
      code == "generic.missingRuntimeExtension") {
    return absl::StatusCode::kFailedPrecondition;
  }
  return absl::StatusCode::kUnknown;
}

// Hosts (and emulators) without displayData still say what happened in the title.
absl::StatusCode CodeForTitle(absl::string_view title) {
  std::string lower = absl::AsciiStrToLower(title);
  if (absl::StrContains(lower, "cannot find") || absl::StrContains(lower, "not found") ||
      absl::StrContains(lower, "no model") || absl::StrContains(lower, "not loaded") ||
      absl::StrContains(lower, "unknown model")) {
    return absl::StatusCode::kNotFound;
  }
  if (absl::StrContains(lower, "already loaded") || absl::StrContains(lower, "already exists") ||
      absl::StrContains(lower, "already in use")) {
    return absl::StatusCode::kAlreadyExists;
  }
  if (absl::StrContains(lower, "out of memory") || absl::StrContains(lower, "insufficient") ||
      absl::StrContains(lower, "not enough memory")) {
    return absl::StatusCode::kResourceExhausted;
  }
  return absl::StatusCode::kUnknown;
}

}  // namespace

absl::string_view NamespaceName(Namespace ns) {
  switch (ns) {
    case Namespace::kLlm:
      return "llm";
    case Namespace::kEmbedding:
      return "embedding";
    case Namespace::kSystem:
      return "system";
    case Namespace::kRepository:
      return "repository";
  }
  return "unknown";
}

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  return ParseBoundedJson(text, what);
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

// The shared getters (backends/json.h), under this driver's names.
const Json* Member(const Json& object, absl::string_view key) { return JsonMember(object, key); }

std::string StringMember(const Json& object, absl::string_view key, absl::string_view fallback) {
  return JsonString(object, key, fallback);
}

std::optional<double> NumberMember(const Json& object, absl::string_view key) {
  return JsonDouble(object, key);
}

std::optional<int64_t> IntMember(const Json& object, absl::string_view key) {
  return JsonInt(object, key);
}

std::optional<int64_t> AsInt(const Json& value) { return JsonAsInt(value); }

bool BoolMember(const Json& object, absl::string_view key, bool fallback) {
  return JsonBool(object, key).value_or(fallback);
}

absl::StatusOr<ClientIdentity> IdentityFromApiToken(absl::string_view token) {
  constexpr absl::string_view kPrefix = "sk-lm-";
  // ^sk-lm-(?<clientIdentifier>[a-zA-Z0-9]{8}):(?<clientPasskey>[a-zA-Z0-9]{20})$
  if (token.size() == kPrefix.size() + 8 + 1 + 20 && absl::StartsWith(token, kPrefix) &&
      token[kPrefix.size() + 8] == ':') {
    absl::string_view id = token.substr(kPrefix.size(), 8);
    absl::string_view key = token.substr(kPrefix.size() + 9, 20);
    if (IsAlnum(id) && IsAlnum(key)) return ClientIdentity{std::string(id), std::string(key)};
  }
  return absl::InvalidArgumentError(
      "the LM Studio API token must look like sk-lm-XXXXXXXX:YYYYYYYYYYYYYYYYYYYY "
      "(8 and 20 letters or digits)");
}

ClientIdentity GuestIdentity() {
  return ClientIdentity{absl::StrCat("guest:", RandomBase64(18)), RandomBase64(18)};
}

std::string EncodeAuthPacket(const ClientIdentity& identity) {
  Json packet = {{"authVersion", 1},
                 {"clientIdentifier", identity.identifier},
                 {"clientPasskey", identity.passkey}};
  return DumpJson(packet);
}

absl::Status DecodeAuthReply(absl::string_view frame) {
  absl::StatusOr<Json> reply = ParseJson(frame, "the authentication reply");
  const Json* success = reply.ok() ? Member(*reply, "success") : nullptr;
  if (success == nullptr || !success->is_boolean()) {
    return absl::UnavailableError(
        "the host did not answer the SDK authentication packet (is it LM Studio?)");
  }
  if (success->get<bool>()) return absl::OkStatus();
  std::string error = StringMember(*reply, "error", "authentication rejected");
  return absl::UnauthenticatedError(absl::StrCat("LM Studio rejected the client: ", error));
}

std::string EncodeRpcCall(int64_t call_id, absl::string_view endpoint,
                          const std::optional<Json>& parameter) {
  Json frame = {{"type", "rpcCall"}, {"endpoint", std::string(endpoint)}, {"callId", call_id}};
  if (parameter.has_value()) frame["parameter"] = *parameter;
  return DumpJson(frame);
}

std::string EncodeChannelCreate(int64_t channel_id, absl::string_view endpoint,
                                const std::optional<Json>& creation_parameter) {
  Json frame = {
      {"type", "channelCreate"}, {"endpoint", std::string(endpoint)}, {"channelId", channel_id}};
  if (creation_parameter.has_value()) frame["creationParameter"] = *creation_parameter;
  return DumpJson(frame);
}

std::string EncodeChannelSend(int64_t channel_id, const Json& message) {
  return DumpJson(Json{{"type", "channelSend"}, {"channelId", channel_id}, {"message", message}});
}

std::string EncodeKeepAliveAck() { return R"({"type":"keepAliveAck"})"; }

absl::StatusOr<ServerMessage> DecodeServerMessage(absl::string_view frame) {
  absl::StatusOr<Json> parsed = ParseJson(frame, "a frame from the host");
  if (!parsed.ok()) return parsed.status();
  Json& json = *parsed;
  const Json* type_json = Member(json, "type");
  if (type_json == nullptr || !type_json->is_string()) {
    return absl::InvalidArgumentError("a frame from the host has no \"type\"");
  }
  const std::string& type = type_json->get_ref<const std::string&>();
  ServerMessage msg;
  using T = ServerMessage::Type;
  struct Kind {
    const char* name;
    T type;
    const char* id_key;  // nullptr: no id
  };
  static constexpr Kind kKinds[] = {
      {"rpcResult", T::kRpcResult, "callId"},
      {"rpcError", T::kRpcError, "callId"},
      {"channelSend", T::kChannelSend, "channelId"},
      {"channelAck", T::kChannelAck, "channelId"},
      {"channelClose", T::kChannelClose, "channelId"},
      {"channelError", T::kChannelError, "channelId"},
      {"communicationWarning", T::kCommunicationWarning, nullptr},
      {"keepAlive", T::kKeepAlive, nullptr},
      {"keepAliveAck", T::kKeepAliveAck, nullptr},
  };
  const Kind* kind = nullptr;
  for (const Kind& k : kKinds) {
    if (type == k.name) kind = &k;
  }
  if (kind == nullptr) {
    msg.type = T::kOther;
    msg.text = type;
    return msg;
  }
  msg.type = kind->type;
  if (kind->id_key != nullptr) {
    std::optional<int64_t> id = IdOf(json, kind->id_key);
    if (!id.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a \"", type, "\" frame has no integer \"", kind->id_key, "\""));
    }
    msg.id = *id;
  }
  switch (msg.type) {
    case T::kRpcResult:
    case T::kChannelSend: {
      auto it = json.find(msg.type == T::kRpcResult ? "result" : "message");
      if (it != json.end()) msg.payload = std::move(*it);
      break;
    }
    case T::kRpcError:
    case T::kChannelError: {
      const Json* error = Member(json, "error");
      msg.status = StatusFromSerializedError(error != nullptr ? *error : Json());
      break;
    }
    case T::kCommunicationWarning: {
      msg.text = StringMember(json, "warning", "(no text)");
      std::string warning_kind = StringMember(json, "kind");
      if (!warning_kind.empty()) absl::StrAppend(&msg.text, " [", warning_kind, "]");
      break;
    }
    default:
      break;
  }
  return msg;
}

absl::Status StatusFromSerializedError(const Json& error) {
  std::string title = StringMember(error, "rootTitle");
  if (title.empty()) title = StringMember(error, "title");
  if (title.empty()) title = "the host reported an error without a title";
  std::string message = title;
  std::string cause = StringMember(error, "cause");
  if (!cause.empty() && cause != title) absl::StrAppend(&message, ": ", cause);

  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (const Json* display = Member(error, "displayData")) {
    code = CodeForDisplayCode(StringMember(*display, "code"));
  }
  if (code == absl::StatusCode::kUnknown) code = CodeForTitle(title);
  return absl::Status(code, message);
}

}  // namespace lmgate::backends::sdk_ws
