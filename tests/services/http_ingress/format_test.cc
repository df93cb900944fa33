// The status → HTTP mapping, the router, and OpenAI bodies → lmgate's requests (no server).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "services/admission/retry_after.h"
#include "services/http_ingress/errors.h"
#include "services/http_ingress/openai_request.h"
#include "services/http_ingress/router.h"

namespace lmgate::http_ingress {
namespace {

using nlohmann::json;

TEST(ErrorsTest, EveryStatusCodeHasItsHttpStatus) {
  using C = absl::StatusCode;
  const std::pair<C, int> table[] = {
      {C::kOk, 200},           {C::kCancelled, 499},         {C::kUnknown, 500},
      {C::kInvalidArgument, 400}, {C::kDeadlineExceeded, 504}, {C::kNotFound, 404},
      {C::kAlreadyExists, 409}, {C::kPermissionDenied, 403}, {C::kResourceExhausted, 429},
      {C::kFailedPrecondition, 400}, {C::kAborted, 409},     {C::kOutOfRange, 400},
      {C::kUnimplemented, 501}, {C::kInternal, 500},         {C::kUnavailable, 503},
      {C::kDataLoss, 500},      {C::kUnauthenticated, 401}};
  for (const auto& [code, http] : table) {
    EXPECT_EQ(HttpStatusFor(code), http) << absl::StatusCodeToString(code);
  }
}

TEST(ErrorsTest, OpenAiShapeAndRetryHeaders) {
  absl::Status st = admission::WithRetryAfter(
      absl::ResourceExhaustedError("tenant t is over 1 requests per minute"),
      absl::Milliseconds(1500));
  HttpResponse r = ErrorResponse(st);
  EXPECT_EQ(r.status, 429);
  json e = json::parse(r.body)["error"];
  EXPECT_EQ(e["message"], "tenant t is over 1 requests per minute");
  EXPECT_EQ(e["type"], "rate_limit_error");
  EXPECT_TRUE(e.contains("param") && e.contains("code"));
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>("Retry-After", "2")));
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>("retry-after-ms", "1500")));
  r = ErrorResponse(absl::NotFoundError("no such model"), {"model", "model_not_found"});
  e = json::parse(r.body)["error"];
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(e["code"], "model_not_found");
  EXPECT_EQ(e["param"], "model");
  e = json::parse(ErrorResponse(InvalidField("stop", "must be a string")).body)["error"];
  EXPECT_EQ(e["param"], "stop");
  EXPECT_EQ(e["message"], "stop: must be a string");
}

TEST(RouterTest, PrefixesParamsAndTheOptionalV1) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/v1/models", [](auto, const std::string&) {}).ok());
  ASSERT_TRUE(router.Add("GET", "/v1/models/*", [](auto, const std::string&) {}).ok());
  ASSERT_TRUE(router.Add("POST", "/v1/chat/completions", [](auto, const std::string&) {}).ok());
  EXPECT_FALSE(router.Add("GET", "/v1/models", [](auto, const std::string&) {}).ok());
  std::string pattern, param;
  ASSERT_TRUE(router.Match("GET", "/models", &pattern, &param));
  EXPECT_EQ(pattern, "/v1/models");
  ASSERT_TRUE(router.Match("GET", "/v1/models/qwen/qwen3-4b", &pattern, &param));
  EXPECT_EQ(pattern, "/v1/models/*");
  EXPECT_EQ(param, "qwen/qwen3-4b");
  EXPECT_FALSE(router.Match("GET", "/v1/models/", &pattern, &param));
  EXPECT_FALSE(router.Match("GET", "/v1/chat/completions", &pattern, &param));
  EXPECT_TRUE(router.Match("POST", "/chat/completions", &pattern, &param));
}

TEST(OpenAiRequestTest, ChatFieldsReachTheRequest) {
  auto body = ParseChatBody(R"({
    "model": "m", "stream": true, "stream_options": {"include_usage": true},
    "messages": [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
                 {"role": "assistant", "content": null,
                  "tool_calls": [{"id": "c1", "type": "function",
                                  "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
              {"type": "function", "function": {"name": "g"}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "temperature": 0.5, "top_k": 40, "max_completion_tokens": 9, "seed": 3,
    "stop": "END", "ttl": 60, "logit_bias": {}})", 64);
  ASSERT_TRUE(body.ok()) << body.status();
  const v1::ChatRequest& r = body->request;
  EXPECT_TRUE(body->stream.stream && body->stream.include_usage);
  EXPECT_EQ(r.messages(0).role(), "system");
  EXPECT_EQ(r.messages(0).content(), "be brief");
  EXPECT_EQ(r.messages(1).tool_calls(0).arguments(), "{\"a\":1}");
  EXPECT_EQ(r.messages(2).tool_call_id(), "c1");
  ASSERT_EQ(r.tools_size(), 1);  // a named tool_choice keeps only that tool, required
  EXPECT_EQ(r.tools(0).name(), "f");
  EXPECT_EQ(r.tool_choice().mode(), v1::ToolChoice::MODE_REQUIRED);
  EXPECT_EQ(r.sampling().temperature(), 0.5);
  EXPECT_EQ(r.sampling().top_k(), 40);
  EXPECT_EQ(r.sampling().max_tokens(), 9);
  EXPECT_EQ(r.sampling().stop(0), "END");
  EXPECT_EQ(r.ttl_hint().seconds(), 60);
}

TEST(OpenAiRequestTest, RefusalsNameTheField) {
  auto param = [](absl::string_view body) {
    auto r = ParseChatBody(body, 64);
    EXPECT_FALSE(r.ok()) << body;
    return r.ok() ? std::string("<ok>") : ParamOf(r.status());
  };
  const std::string m = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(param("{" + m + R"(,"logit_bias":{"50256":-100}})"), "logit_bias");
  EXPECT_EQ(param("{" + m + R"(,"functions":[]})"), "functions");
  EXPECT_EQ(param("{" + m + R"(,"stream_options":{"x":1}})"), "stream_options.x");
  EXPECT_EQ(param("{" + m + R"(,"response_format":{"type":"json_schema"}})"),
            "response_format.json_schema");
  EXPECT_EQ(param(R"({"messages":[{"role":"user","content":"x","extra":1}]})"),
            "messages[0].extra");
  EXPECT_EQ(ParamOf(ParseEmbeddingsBody(R"({"input":[1,2]})", 64).status()), "input");
  EXPECT_EQ(ParamOf(ParseEmbeddingsBody(R"({"input":"x","encoding_format":"hex"})", 64).status()),
            "encoding_format");
  EXPECT_EQ(ParamOf(ParseCompletionBody(R"({"prompt":"x","echo":true})", 64).status()), "echo");
  EXPECT_EQ(OpenAiFieldNames("sampling.top_p must be in [0, 1]"), "top_p must be in [0, 1]");
}

}  // namespace
}  // namespace lmgate::http_ingress
