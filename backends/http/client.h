// HttpClient: the one libcurl client of lmgate's HTTP drivers (rest, openai).
//
// One client per driver instance and host. It owns a curl multi handle and ONE event-loop
// thread that runs every transfer, so thousands of concurrent streams cost no thread each.
// Finished transfers leave their connection in the multi handle's cache (HTTP/1.1 keep-alive),
// so later requests reuse it.
//
// Threading contract:
// - Create(), Do(), StartStream(), StreamHandle::Cancel() and stats() are thread-safe.
// - Do() blocks the calling thread until the answer, the deadline or a cancel; it must not be
//   called on the loop thread (i.e. from a stream callback): it then fails with INTERNAL.
// - StartStream() never blocks. Its callbacks run on the loop thread, one at a time, in order:
//   on_chunk zero or more times, then on_done exactly once. Callbacks must not block (they stall
//   every other transfer); they may call StartStream() and Cancel().
// - Shutdown() (and ~HttpClient()) finishes every transfer still running with CANCELLED (on_done
//   runs on the loop thread before it returns) and joins the loop thread; afterwards Do() and
//   StartStream() fail at once with CANCELLED. Do not call either from one of its callbacks.
//
// Timeouts: `connect_timeout` per connection attempt (UNAVAILABLE); the call's deadline is the
// earlier of CallContext::deadline (DEADLINE_EXCEEDED) and, for Do(), now + request timeout
// (DEADLINE_EXCEEDED); streams also fail with UNAVAILABLE after `idle_timeout` without a byte.
// Retries follow retry.h; errors follow status.h.
#ifndef LMGATE_BACKENDS_HTTP_CLIENT_H_
#define LMGATE_BACKENDS_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/driver.h"
#include "backends/http/retry.h"

namespace lmgate::backends::http {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, DELETE, ...
  std::string path;            // appended to Options::base_url, e.g. "/v1/models"
  std::string body;            // sent when non-empty (Content-Type: application/json)
  // Non-GET requests are retried only when marked (see retry.h).
  bool idempotent = false;
  // Do(): replaces Options::request_timeout as the cap of the whole call (all attempts).
  // StartStream(): caps the whole stream; unset = no cap besides the CallContext deadline.
  std::optional<absl::Duration> timeout;
};

struct HttpResponse {
  int status = 0;            // HTTP status of the last attempt; 0 if none was received
  std::string content_type;  // lower-case as sent, e.g. "text/event-stream; charset=utf-8"
  std::string body;          // the whole body (Do), or see StreamCallbacks::on_done
};

struct StreamCallbacks {
  // A piece of the body of a 2xx answer whose Content-Type starts with StartStream()'s
  // `stream_content_type`, as it arrives.
  std::function<void(absl::string_view bytes)> on_chunk;
  // Exactly once, last. OK when the answer ended normally. When the 2xx answer was NOT of the
  // stream content type (e.g. a JSON body instead of SSE), nothing went to on_chunk and the
  // whole body is in `response.body`; error answers never reach on_chunk and map through
  // status.h. CANCELLED after Cancel()/the CallContext's token, DEADLINE_EXCEEDED at the
  // deadline, UNAVAILABLE when the connection broke or stayed idle.
  std::function<void(absl::Status status, HttpResponse response)> on_done;
};

// Controls one running stream. Thread-safe; outlives the client harmlessly.
class StreamHandle {
 public:
  virtual ~StreamHandle() = default;
  // Aborts the transfer promptly (the connection is closed, so the upstream sees the client
  // go away); on_done follows with CANCELLED unless it already ran. Idempotent, non-blocking.
  // After Cancel() returns, on_chunk is not called again, except for a call already running
  // on the loop thread.
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  struct Options {
    // "http://host:port[/prefix]" without trailing slash (HostUrl::HttpBase()).
    std::string base_url;
    // Sent as "Authorization: Bearer <token>" when non-empty.
    std::string api_token;
    absl::Duration connect_timeout = absl::Seconds(3);
    absl::Duration request_timeout = absl::Seconds(60);
    absl::Duration idle_timeout = absl::Seconds(120);
    RetryPolicy retry;
    // Bodies buffered in memory (Do(), error answers) larger than this fail the call with
    // RESOURCE_EXHAUSTED.
    size_t max_buffered_body = 64 << 20;
    std::string user_agent = "lmgate";
  };

  struct Stats {
    int64_t calls = 0;                // Do() + StartStream()
    int64_t attempts = 0;             // HTTP attempts, retries included
    int64_t retries = 0;
    int64_t connections_opened = 0;   // new TCP connections (the rest were reused)
    int64_t active = 0;               // calls not finished yet
  };

  // INVALID_ARGUMENT when base_url is empty, INTERNAL when libcurl cannot start.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and waits for the whole answer. Non-2xx answers and LM Studio error bodies
  // become errors (status.h); the response of an error is not returned.
  absl::StatusOr<HttpResponse> Do(const CallContext& ctx, const HttpRequest& request);

  // Starts a streamed request (see StreamCallbacks). `ctx.cancel` cancels it like Cancel().
  // When the client is shutting down, on_done runs with CANCELLED before this returns.
  std::shared_ptr<StreamHandle> StartStream(const CallContext& ctx, const HttpRequest& request,
                                            StreamCallbacks callbacks,
                                            absl::string_view stream_content_type =
                                                "text/event-stream");

  // Stops the loop thread (see the threading contract). Idempotent; thread-safe.
  void Shutdown();

  const std::string& base_url() const { return base_url_; }
  Stats stats() const;

  struct Core;  // shared with stream handles; defined in client.cc

 private:
  HttpClient(std::string base_url, std::shared_ptr<Core> core);

  const std::string base_url_;
  std::shared_ptr<Core> core_;
};

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_CLIENT_H_
