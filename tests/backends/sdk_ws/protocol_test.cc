#include "backends/sdk_ws/protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace lmgate::backends::sdk_ws {
namespace {

TEST(Auth, ApiTokenIsSplitIntoIdentifierAndPasskey) {
  auto id = IdentityFromApiToken("sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->identifier, "AbCd1234");
  EXPECT_EQ(id->passkey, "ABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(EncodeAuthPacket(*id),
            R"({"authVersion":1,"clientIdentifier":"AbCd1234","clientPasskey":"ABCDEFGHIJKLMNOPQRST"})");
}

TEST(Auth, MalformedTokensAreRejectedWithoutEchoingThem) {
  for (const char* bad : {"", "sk-lm-AbCd1234", "sk-lm-AbCd123:ABCDEFGHIJKLMNOPQRST",
                          "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRS", "sk-lm-AbCd12-4:ABCDEFGHIJKLMNOPQRST",
                          "xx-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST", "sk-lm-AbCd1234;ABCDEFGHIJKLMNOPQRST",
                          "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRSTU"}) {
    auto id = IdentityFromApiToken(bad);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    if (*bad) {
      EXPECT_EQ(std::string(id.status().message()).find(bad), std::string::npos);
    }
  }
}

TEST(Auth, GuestIdentitiesAreRandomBase64) {
  ClientIdentity a = GuestIdentity();
  ClientIdentity b = GuestIdentity();
  EXPECT_EQ(a.identifier.substr(0, 6), "guest:");
  EXPECT_EQ(a.identifier.size(), 6 + 24u);  // 18 bytes → 24 base64 chars
  EXPECT_EQ(a.passkey.size(), 24u);
  EXPECT_NE(a.identifier, b.identifier);
  EXPECT_NE(a.passkey, b.passkey);
}

TEST(Auth, Replies) {
  EXPECT_TRUE(DecodeAuthReply(R"({"success":true})").ok());
  absl::Status rejected = DecodeAuthReply(R"({"success":false,"error":"Invalid client passkey"})");
  EXPECT_EQ(rejected.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(rejected.message().find("Invalid client passkey"), absl::string_view::npos);
  EXPECT_EQ(DecodeAuthReply(R"({"success":false})").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(DecodeAuthReply("HTTP/1.1 200").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(DecodeAuthReply(R"({"success":"yes"})").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(DecodeAuthReply("[]").code(), absl::StatusCode::kUnavailable);
}

TEST(Envelope, ClientFramesMatchTheSdkBytes) {
  EXPECT_EQ(EncodeRpcCall(0, "listLoaded", std::nullopt),
            R"({"callId":0,"endpoint":"listLoaded","type":"rpcCall"})");
  EXPECT_EQ(EncodeRpcCall(10, "unloadModel", Json{{"identifier", "my-qwen"}}),
            R"({"callId":10,"endpoint":"unloadModel","parameter":{"identifier":"my-qwen"},"type":"rpcCall"})");
  EXPECT_EQ(EncodeChannelCreate(1, "loadModel", Json{{"modelKey", "k"}}),
            R"({"channelId":1,"creationParameter":{"modelKey":"k"},"endpoint":"loadModel","type":"channelCreate"})");
  EXPECT_EQ(EncodeChannelSend(5, Json{{"type", "cancel"}}),
            R"({"channelId":5,"message":{"type":"cancel"},"type":"channelSend"})");
  EXPECT_EQ(EncodeKeepAliveAck(), R"({"type":"keepAliveAck"})");
}

TEST(Envelope, InvalidUtf8IsReplacedNotThrown) {
  std::string bad = "a\xff\xfe" "b";
  std::string frame = EncodeRpcCall(1, "tokenize", Json{{"inputString", bad}});
  EXPECT_NE(frame.find("inputString"), std::string::npos);
}

TEST(Envelope, DecodesEveryServerFrameType) {
  using T = ServerMessage::Type;
  auto m = DecodeServerMessage(R"({"type":"rpcResult","callId":3,"result":[1,2]})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kRpcResult);
  EXPECT_EQ(m->id, 3);
  EXPECT_EQ(m->payload, Json::array({1, 2}));

  m = DecodeServerMessage(R"({"type":"rpcResult","callId":4})");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->payload.is_null());  // void

  m = DecodeServerMessage(
      R"({"type":"rpcError","callId":5,"error":{"title":"t","rootTitle":"Cannot find model","displayData":{"code":"generic.noModelMatchingQuery"}}})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kRpcError);
  EXPECT_EQ(m->status.code(), absl::StatusCode::kNotFound);

  m = DecodeServerMessage(R"({"type":"channelSend","channelId":7,"message":{"type":"progress","progress":0.5}})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kChannelSend);
  EXPECT_EQ(m->id, 7);
  EXPECT_EQ(m->payload["progress"], 0.5);

  m = DecodeServerMessage(R"({"type":"channelClose","channelId":7})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kChannelClose);

  m = DecodeServerMessage(R"({"type":"channelError","channelId":8,"error":{"title":"boom"}})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kChannelError);
  EXPECT_EQ(m->status.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(m->status.message(), "boom");

  m = DecodeServerMessage(R"({"type":"channelAck","channelId":8,"ackId":1})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kChannelAck);

  m = DecodeServerMessage(R"({"type":"communicationWarning","warning":"w","kind":"rpcEndpointUnknown"})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kCommunicationWarning);
  EXPECT_EQ(m->text, "w [rpcEndpointUnknown]");

  m = DecodeServerMessage(R"({"type":"keepAlive"})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kKeepAlive);
  m = DecodeServerMessage(R"({"type":"keepAliveAck"})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kKeepAliveAck);
  m = DecodeServerMessage(R"({"type":"signalUpdate","subscribeId":1,"patches":[]})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, T::kOther);
  EXPECT_EQ(m->text, "signalUpdate");
}

TEST(Envelope, MalformedFramesAreErrorsNotCrashes) {
  for (const char* bad : {"", "{", "null", "[]", "42", R"({"type":1})", R"({"callId":1})",
                          R"({"type":"rpcResult"})", R"({"type":"rpcResult","callId":"1"})",
                          R"({"type":"channelSend","channelId":1.5})",
                          R"({"type":"channelClose","channelId":null})",
                          R"({"type":"rpcResult","callId":1e300})"}) {
    EXPECT_FALSE(DecodeServerMessage(bad).ok()) << bad;
  }
  // Integral floats are accepted as ids (JS numbers).
  auto m = DecodeServerMessage(R"({"type":"channelClose","channelId":2.0})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->id, 2);
  // Errors of any shape still decode to a status.
  m = DecodeServerMessage(R"({"type":"rpcError","callId":1,"error":"text"})");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->status.ok());
  m = DecodeServerMessage(R"({"type":"rpcError","callId":1})");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->status.ok());
}

TEST(Errors, DisplayCodesMapToStatusCodes) {
  auto code = [](const char* display) {
    return StatusFromSerializedError(
               Json{{"title", "x"}, {"displayData", Json{{"code", display}}}})
        .code();
  };
  EXPECT_EQ(code("generic.noModelMatchingQuery"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("generic.identifierNotFound"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("generic.pathNotFound"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("generic.presetNotFound"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("generic.specificModelUnloaded"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("generic.domainMismatch"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("generic.engineDoesNotSupportFeature"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(code("generic.somethingNew"), absl::StatusCode::kUnknown);
}

TEST(Errors, MessageUsesRootTitleAndCause) {
  absl::Status s = StatusFromSerializedError(
      Json{{"title", "Failed"}, {"rootTitle", "Cannot find model with key \"no/such\""},
           {"cause", "not downloaded"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);  // from the title text
  EXPECT_EQ(s.message(), "Cannot find model with key \"no/such\": not downloaded");
  s = StatusFromSerializedError(Json{{"title", "Failed to load the model"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "Failed to load the model");
  EXPECT_EQ(StatusFromSerializedError(Json{{"title", "Out of memory"}}).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusFromSerializedError(
                Json{{"title", "Identifier \"x\" is already loaded. Use a different identifier."}})
                .code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(Json, HelpersNeverThrowOnWrongTypes) {
  Json j = Json::parse(R"({"s":1,"n":"x","i":1.5,"b":"true","big":18446744073709551615})");
  EXPECT_EQ(StringMember(j, "s", "fb"), "fb");
  EXPECT_FALSE(NumberMember(j, "n").has_value());
  EXPECT_FALSE(IntMember(j, "i").has_value());
  EXPECT_FALSE(IntMember(j, "big").has_value());
  EXPECT_TRUE(BoolMember(j, "b", true));
  EXPECT_EQ(Member(Json::array(), "x"), nullptr);
  EXPECT_EQ(StringMember(Json(), "x"), "");
}

}  // namespace
}  // namespace lmgate::backends::sdk_ws
