// LM Studio's HTTP interfaces on the emulator, independent of the HTTP library: OpenAI-compatible
// /v1/*, REST /api/v0/* and /api/v1/*, the discovery probes (/lmstudio-greeting, /lms-status), API
// token checks, and the emulator's own control endpoints under /__emulator/.
//
// Thread-safety: Handle() may be called concurrently from any I/O thread. Responses may be
// produced later from Host worker threads through HttpResponder.
#ifndef LMGATE_TESTS_EMULATOR_HTTP_API_H_
#define LMGATE_TESTS_EMULATOR_HTTP_API_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/frame_log.h"
#include "tests/emulator/model_host.h"

namespace lmgate::emulator {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path plus optional query
  std::string authorization;  // the Authorization header, may be empty
  std::string body;
  Headers headers;            // every request header, for the frame log
};

// One in-flight HTTP exchange, implemented by the server. Exactly one of Respond() or
// StartStream() … EndStream() happens per request; calls after the connection died are no-ops.
// Thread-safe; calls from one thread keep their order on the wire.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void Respond(int status, const std::string& content_type, std::string body) = 0;
  // Starts a chunked 200 response; every WriteChunk() is flushed to the socket at once.
  virtual void StartStream(const std::string& content_type) = 0;
  virtual void WriteChunk(std::string data) = 0;
  virtual void EndStream() = 0;
  // Fault injection: close the TCP connection now, mid-response.
  virtual void Drop() = 0;
};

struct HttpApiOptions {
  std::string api_token;  // "" = no auth
  std::string lmstudio_version = "0.4.0";
  std::string emulator_version = "1.0.0";
  // Called by POST /__emulator/faults {"refuse_connections_ms": D, "drop_existing_connections"?}
  // after the response has been written.
  std::function<void(int64_t ms, bool drop_existing)> restart;
  // Gets every request outside /__emulator/ (may be null; must outlive the HttpApi). Also served
  // by GET /__emulator/frames and cleared by POST /__emulator/frames {"clear":true}.
  FrameLog* frames = nullptr;
};

struct HttpHandleResult {
  // The work to cancel if the client disconnects before the response ended (may be null).
  std::shared_ptr<Job> job;
  // Run by the server after the response has been fully written (may be empty).
  std::function<void()> after_response;
};

class HttpApi {
 public:
  HttpApi(Host* host, HttpApiOptions options);

  // Routes one request. Synchronous routes respond before returning; inference routes respond
  // later from a worker thread. Malformed bodies (wrong JSON types) get a 400, never an exception.
  HttpHandleResult Handle(const HttpRequest& request, std::shared_ptr<HttpResponder> responder);

 private:
  HttpHandleResult Route(const HttpRequest& request, std::shared_ptr<HttpResponder> responder);
  HttpHandleResult HandleOpenAiStyle(const std::string& path, const nlohmann::json& body,
                                     bool rest_v0, std::shared_ptr<HttpResponder> responder);
  HttpHandleResult HandleEmbeddings(const nlohmann::json& body,
                                    std::shared_ptr<HttpResponder> responder);
  HttpHandleResult HandleV1Chat(const nlohmann::json& body,
                                std::shared_ptr<HttpResponder> responder);
  HttpHandleResult HandleV1Load(const nlohmann::json& body,
                                std::shared_ptr<HttpResponder> responder);
  nlohmann::json V0Model(const ModelSpec& spec, const std::vector<InstanceHandle>& loaded) const;
  nlohmann::json V0Models() const;  // the rows of GET /api/v0/models
  nlohmann::json V1Models() const;
  HttpHandleResult Spawn(std::shared_ptr<HttpResponder> responder,
                         std::function<void(Job*)> work);

  Host* const host_;
  const HttpApiOptions options_;
  absl::Mutex mu_;
  // /api/v1/chat stateful conversations: response_id → messages so far (store: true).
  std::map<std::string, std::vector<ChatMessage>> conversations_ ABSL_GUARDED_BY(mu_);
};

// LM Studio error bodies. OpenAI/v0 style: {"error":{"message","type":"invalid_request_error",
// "param"?,"code"?}}; v1 style: {"error":{"type","message","code"?,"param"?}}.
nlohmann::json OpenAiErrorBody(const absl::Status& status);
nlohmann::json V1ErrorBody(const absl::Status& status);
int HttpStatusOf(const absl::Status& status);  // payload, else derived from the code

}  // namespace lmgate::emulator

#endif  // LMGATE_TESTS_EMULATOR_HTTP_API_H_
