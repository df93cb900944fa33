// A blocking libcurl client for the ingress tests: one request per call, real sockets, every
// call bounded by a timeout so a hung server fails the test instead of hanging it.
#ifndef LMGATE_TESTS_SERVICES_HTTP_INGRESS_HTTP_CLIENT_H_
#define LMGATE_TESTS_SERVICES_HTTP_INGRESS_HTTP_CLIENT_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace lmgate::testutil {

struct HttpResult {
  int status = 0;  // 0: no answer (curl_error says why)
  std::string curl_error;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
};

struct HttpCallOptions {
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  absl::Duration timeout = absl::Seconds(20);
  // Called with each piece of the body as it arrives; returning false aborts the transfer (the
  // client goes away mid-answer).
  std::function<bool(const std::string& so_far)> on_data;
};

HttpResult HttpCall(int port, const std::string& path, const HttpCallOptions& options = {});
inline HttpResult HttpPost(int port, const std::string& path, const std::string& body,
                           std::vector<std::string> headers = {}) {
  HttpCallOptions o;
  o.method = "POST";
  o.body = body;
  o.headers = std::move(headers);
  o.headers.push_back("Content-Type: application/json");
  return HttpCall(port, path, o);
}

// The `data:` payloads of an SSE body, in order ("[DONE]" included).
std::vector<std::string> SseData(const std::string& body);

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_SERVICES_HTTP_INGRESS_HTTP_CLIENT_H_
