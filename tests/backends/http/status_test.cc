#include "backends/http/status.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/http/retry.h"

namespace lmgate::backends::http {
namespace {

using ::testing::HasSubstr;

const RequestInfo kPost{"http://127.0.0.1:1234", "POST", "/v1/chat/completions"};

TEST(StatusTableTest, HttpColumn) {
  struct Row {
    int http;
    absl::StatusCode code;
  };
  for (const Row& row : std::vector<Row>{{200, absl::StatusCode::kOk},
                                         {204, absl::StatusCode::kOk},
                                         {301, absl::StatusCode::kUnknown},
                                         {400, absl::StatusCode::kInvalidArgument},
                                         {401, absl::StatusCode::kUnauthenticated},
                                         {403, absl::StatusCode::kPermissionDenied},
                                         {404, absl::StatusCode::kNotFound},
                                         {405, absl::StatusCode::kUnimplemented},
                                         {408, absl::StatusCode::kUnavailable},
                                         {409, absl::StatusCode::kAborted},
                                         {418, absl::StatusCode::kFailedPrecondition},
                                         {429, absl::StatusCode::kResourceExhausted},
                                         {499, absl::StatusCode::kCancelled},
                                         {500, absl::StatusCode::kUnavailable},
                                         {501, absl::StatusCode::kUnimplemented},
                                         {502, absl::StatusCode::kUnavailable},
                                         {503, absl::StatusCode::kUnavailable},
                                         {504, absl::StatusCode::kUnavailable}}) {
    EXPECT_EQ(CodeForHttpStatus(row.http), row.code) << row.http;
    absl::Status s = StatusFromHttpResponse(row.http, "", kPost);
    EXPECT_EQ(s.code(), row.code) << row.http;
    if (!s.ok()) {
      EXPECT_EQ(HttpStatusOf(s), row.http);
      EXPECT_FALSE(IsTransportFailure(s));
    }
  }
}

TEST(StatusTableTest, ModelNotFoundObjectShape) {
  absl::Status s = StatusFromHttpResponse(
      400,
      R"({"error":{"message":"Invalid model identifier \"o4-mini\". Please specify a valid downloaded model (e.g., a, b, c).","type":"invalid_request_error","param":"model","code":"model_not_found"}})",
      kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("LM Studio at http://127.0.0.1:1234: Invalid model identifier "
                                     "\"o4-mini\""));
  EXPECT_THAT(s.message(), HasSubstr("HTTP 400 on POST /v1/chat/completions"));
}

TEST(StatusTableTest, JitWindowIsUnavailableAndMarkedNotRun) {
  // What LM Studio (and the emulator's JIT-window fault) answers while a model loads/unloads:
  // the model exists, nothing ran, so this is neither NOT_FOUND nor final.
  absl::Status s = StatusFromHttpResponse(
      404,
      R"({"error":{"message":"Model \"qwen/qwen3-4b\" is not available: it is being loaded or unloaded.","code":"model_not_found"}})",
      kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(HostDidNotRun(s));
  EXPECT_THAT(s.message(), HasSubstr("being loaded or unloaded"));
  RetryPolicy policy;
  EXPECT_TRUE(ShouldRetry(policy, {s, /*idempotent=*/false, /*delivered=*/false, 0}));
  EXPECT_FALSE(HostDidNotRun(StatusFromHttpResponse(503, "", kPost)));
}

TEST(StatusTableTest, StringShapeAndRefinements) {
  absl::Status s = StatusFromHttpResponse(
      400, R"({"error":"No models loaded. Please load a model in the developer page."})", kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);  // the instance is gone: re-sync and load
  EXPECT_THAT(s.message(), HasSubstr("No models loaded"));

  s = StatusFromHttpResponse(404, R"({"error":"Model not found: x"})", kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);

  s = StatusFromHttpResponse(
      401,
      R"({"error":{"type":"invalid_request","code":"invalid_api_key","message":"An LM Studio API token is required"}})",
      kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("An LM Studio API token is required"));

  s = StatusFromHttpResponse(500, "plain text crash", kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("plain text crash"));
}

TEST(StatusTableTest, UnexpectedEndpointQuirkWith200) {
  absl::Status s = StatusFromHttpResponse(
      200, R"j({"error":"Unexpected endpoint or method. (GET /api/v1/models)"})j",
      RequestInfo{"http://h:1", "GET", "/api/v1/models"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("does not serve GET /api/v1/models"));
  EXPECT_THAT(s.message(), HasSubstr("too old"));
}

TEST(StatusTableTest, OtherErrorIn200AndSuccessBodies) {
  EXPECT_EQ(StatusFromHttpResponse(200, R"({"error":{"message":"boom"}})", kPost).code(),
            absl::StatusCode::kUnknown);
  EXPECT_TRUE(StatusFromHttpResponse(200, R"({"data":[]})", kPost).ok());
  EXPECT_TRUE(StatusFromHttpResponse(200, "not json", kPost).ok());
  EXPECT_TRUE(StatusFromHttpResponse(200, R"({"error":null})", kPost).ok());
}

TEST(StatusTableTest, ParseLmStudioErrorBothShapes) {
  auto a = ParseLmStudioError(R"({"error":"text"})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->message, "text");
  auto b = ParseLmStudioError(R"( {"error":{"message":"m","type":"t","code":"c","param":"p"}} )");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->message, "m");
  EXPECT_EQ(b->type, "t");
  EXPECT_EQ(b->code, "c");
  EXPECT_EQ(b->param, "p");
  EXPECT_FALSE(ParseLmStudioError("[1]"));
  EXPECT_FALSE(ParseLmStudioError("{"));
}

TEST(StatusTableTest, StreamErrors) {
  EXPECT_EQ(StatusFromStreamError(
                LmStudioError{"The model was unloaded during the prediction", "", "", ""}, kPost)
                .code(),
            absl::StatusCode::kUnavailable);
  absl::Status s = StatusFromStreamError(LmStudioError{"GPU exploded", "", "", ""}, kPost);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(s.message(), HasSubstr("error inside the stream of POST /v1/chat/completions"));
  EXPECT_EQ(HttpStatusOf(s), 200);
  EXPECT_FALSE(IsRetryableFailure(s));
  EXPECT_EQ(StatusFromStreamError(LmStudioError{"x", "model_not_found", "", ""}, kPost).code(),
            absl::StatusCode::kNotFound);
}

TEST(StatusTableTest, TransportColumn) {
  struct Row {
    CURLcode curl;
    bool connected;
    absl::StatusCode code;
    bool retryable;
  };
  for (const Row& row : std::vector<Row>{
           {CURLE_COULDNT_CONNECT, false, absl::StatusCode::kUnavailable, true},
           {CURLE_COULDNT_RESOLVE_HOST, false, absl::StatusCode::kUnavailable, true},
           {CURLE_OPERATION_TIMEDOUT, false, absl::StatusCode::kUnavailable, true},
           {CURLE_GOT_NOTHING, true, absl::StatusCode::kUnavailable, true},
           {CURLE_RECV_ERROR, true, absl::StatusCode::kUnavailable, true},
           {CURLE_PARTIAL_FILE, true, absl::StatusCode::kUnavailable, true},
           {CURLE_PEER_FAILED_VERIFICATION, true, absl::StatusCode::kFailedPrecondition, false},
           {CURLE_URL_MALFORMAT, false, absl::StatusCode::kInvalidArgument, false},
           {CURLE_ABORTED_BY_CALLBACK, true, absl::StatusCode::kCancelled, false},
           {CURLE_WRITE_ERROR, true, absl::StatusCode::kUnknown, false}}) {
    absl::Status s = StatusFromTransport(row.curl, "", row.connected, kPost);
    EXPECT_EQ(s.code(), row.code) << row.curl;
    EXPECT_TRUE(IsTransportFailure(s));
    EXPECT_FALSE(HttpStatusOf(s));
    EXPECT_EQ(IsRetryableFailure(s), row.retryable) << row.curl;
  }
  absl::Status refused = StatusFromTransport(CURLE_COULDNT_CONNECT, "Connection refused", false,
                                             kPost);
  EXPECT_THAT(refused.message(), HasSubstr("cannot connect to LM Studio at http://127.0.0.1:1234 "
                                           "(Connection refused)"));
}

}  // namespace
}  // namespace lmgate::backends::http
