#include "backends/http/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/http/curl_handles.h"
#include "backends/http/log.h"
#include "backends/http/status.h"
#include "backends/log.h"

namespace lmgate::backends::http {
namespace {

// Shared between a transfer (loop thread) and its StreamHandle / cancel callback.
struct TransferControl {
  explicit TransferControl(uint64_t i) : id(i) {}
  const uint64_t id;
  std::atomic<bool> cancelled{false};
};

// One call (all its attempts). Created on the caller's thread, then owned by the loop thread.
struct Transfer {
  std::shared_ptr<TransferControl> control;
  std::string method, path, url, body, request_id, traceparent;
  bool idempotent = false;
  bool stream = false;
  std::string stream_content_type;
  absl::Time deadline = absl::InfiniteFuture();
  bool deadline_is_callers = false;  // the CallContext's deadline, not our own cap
  absl::Duration idle = absl::InfiniteDuration();
  StreamCallbacks callbacks;
  std::shared_ptr<CancelToken> token;
  CancelToken::CallbackId token_callback = 0;

  // Loop-thread state.
  CurlEasy easy;
  CurlSlist headers;
  char errbuf[CURL_ERROR_SIZE] = {0};
  int retries_done = 0;
  bool in_multi = false;
  absl::Time retry_at = absl::InfiniteFuture();
  absl::Time last_activity;
  bool mode_decided = false;
  bool deliver = false;    // this attempt's body goes to on_chunk
  bool delivered = false;  // some body went to on_chunk (never retry then)
  size_t max_buffered = 0;
  HttpResponse response;
  absl::Status local_error;

  RequestInfo info(const std::string& base) const { return RequestInfo{base, method, path}; }
};

size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * count;
  if (t->control->cancelled.load(std::memory_order_acquire)) return 0;
  t->last_activity = absl::Now();
  if (!t->mode_decided) {
    t->mode_decided = true;
    long code = 0;
    char* content_type = nullptr;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(t->easy.get(), CURLINFO_CONTENT_TYPE, &content_type);
    t->response.status = static_cast<int>(code);
    t->response.content_type = content_type != nullptr ? content_type : "";
    t->deliver = t->stream && code >= 200 && code < 300 &&
                 absl::StartsWithIgnoreCase(t->response.content_type, t->stream_content_type);
  }
  if (t->deliver) {
    t->delivered = true;
    if (t->callbacks.on_chunk) t->callbacks.on_chunk(absl::string_view(data, len));
    return len;
  }
  if (t->response.body.size() + len > t->max_buffered) {
    t->local_error = absl::ResourceExhaustedError(
        absl::StrCat("answer of ", t->method, " ", t->path, " exceeds ", t->max_buffered,
                     " bytes"));
    return 0;
  }
  t->response.body.append(data, len);
  return len;
}

class StreamHandleImpl : public StreamHandle {
 public:
  StreamHandleImpl(std::weak_ptr<HttpClient::Core> core, std::shared_ptr<TransferControl> control)
      : core_(std::move(core)), control_(std::move(control)) {}
  void Cancel() override;

 private:
  std::weak_ptr<HttpClient::Core> core_;
  std::shared_ptr<TransferControl> control_;
};

}  // namespace

struct HttpClient::Core {
  struct Command {
    std::unique_ptr<Transfer> add;  // null: cancel `cancel_id`
    uint64_t cancel_id = 0;
  };

  explicit Core(Options o) : options(std::move(o)) {}
  ~Core() { multi.reset(); }

  // Queues a command for the loop. False (and `cmd` untouched) once the loop is stopping.
  bool Post(Command& cmd) ABSL_LOCKS_EXCLUDED(mu) {
    {
      absl::MutexLock lock(&mu);
      if (stopping) return false;
      queue.push_back(std::move(cmd));
    }
    curl_multi_wakeup(multi.get());
    return true;
  }
  void RequestCancel(TransferControl& control) {
    if (control.cancelled.exchange(true)) return;
    Command cmd;
    cmd.cancel_id = control.id;
    Post(cmd);
  }

  void Run();
  void Add(std::unique_ptr<Transfer> t);
  void StartAttempt(Transfer* t);
  void OnAttemptDone(Transfer* t, CURLcode result);
  void ScanTimers(absl::Time now);
  void Finish(Transfer* t, absl::Status status);
  void Arm(absl::Time when) { next_timer = std::min(next_timer, when); }
  absl::Status DeadlineError(const Transfer& t) const {
    return absl::DeadlineExceededError(
        t.deadline_is_callers
            ? absl::StrCat("the call's deadline passed while waiting for LM Studio at ",
                           options.base_url, " (", t.method, " ", t.path, ")")
            : absl::StrCat("LM Studio at ", options.base_url, " did not finish ", t.method, " ",
                           t.path, " in time"));
  }

  const Options options;
  CurlMulti multi;
  std::thread loop;
  std::thread::id loop_id;  // set before any caller sees the client; `loop` is joined later
  absl::Mutex join_mu;      // held while joining `loop`

  absl::Mutex mu;
  std::vector<Command> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  std::atomic<uint64_t> next_id{1};
  std::atomic<int64_t> calls{0}, attempts{0}, retries{0}, connections{0}, active{0};

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers;
  absl::Time next_timer = absl::InfiniteFuture();
};

namespace {

void StreamHandleImpl::Cancel() {
  if (auto core = core_.lock()) {
    core->RequestCancel(*control_);
  } else {
    control_->cancelled.store(true);
  }
}

}  // namespace

void HttpClient::Core::Run() {
  while (true) {
    std::vector<Command> commands;
    bool stop;
    {
      absl::MutexLock lock(&mu);
      commands.swap(queue);
      stop = stopping;
    }
    for (Command& cmd : commands) {
      if (cmd.add) {
        Add(std::move(cmd.add));
      } else if (auto it = transfers.find(cmd.cancel_id); it != transfers.end()) {
        Finish(it->second.get(), absl::CancelledError(absl::StrCat(
                                     "request to LM Studio at ", options.base_url, " (",
                                     it->second->method, " ", it->second->path, ") cancelled")));
      }
    }
    if (stop) break;
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURLcode result = msg->data.result;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
      OnAttemptDone(t, result);
    }
    absl::Time now = absl::Now();
    if (now >= next_timer) ScanTimers(now);
    int timeout_ms = 1000;
    if (next_timer != absl::InfiniteFuture()) {
      int64_t until = absl::ToInt64Milliseconds(absl::Ceil(next_timer - now, absl::Milliseconds(1)));
      timeout_ms = static_cast<int>(std::clamp<int64_t>(until, 0, 1000));
    }
    curl_multi_poll(multi.get(), nullptr, 0, timeout_ms, nullptr);
  }
  // Stopping: nothing can be posted any more. Finish what is queued and what runs.
  std::vector<Command> rest;
  {
    absl::MutexLock lock(&mu);
    rest.swap(queue);
  }
  for (Command& cmd : rest) {
    if (cmd.add) Add(std::move(cmd.add));  // cancelled just below
  }
  std::vector<Transfer*> all;
  for (auto& [id, t] : transfers) all.push_back(t.get());
  for (Transfer* t : all) {
    Finish(t, absl::CancelledError(absl::StrCat("HTTP client for LM Studio at ", options.base_url,
                                                " shut down during ", t->method, " ", t->path)));
  }
}

void HttpClient::Core::Add(std::unique_ptr<Transfer> owned) {
  Transfer* t = owned.get();
  transfers.emplace(t->control->id, std::move(owned));
  if (t->control->cancelled.load()) {
    Finish(t, absl::CancelledError(absl::StrCat("request to LM Studio at ", options.base_url,
                                                " cancelled before it started")));
    return;
  }
  t->easy.reset(curl_easy_init());
  bool ok = t->easy != nullptr;
  ok = ok && t->headers.Append(t->stream ? "Accept: text/event-stream, application/json"
                                         : "Accept: application/json");
  if (!t->body.empty() || t->method != "GET") {
    ok = ok && t->headers.Append("Content-Type: application/json");
  }
  ok = ok && t->headers.Append("Expect:");
  if (!options.api_token.empty()) {
    ok = ok && t->headers.Append(absl::StrCat("Authorization: Bearer ", options.api_token));
  }
  if (!t->traceparent.empty()) {
    ok = ok && t->headers.Append(absl::StrCat("traceparent: ", t->traceparent));
  }
  if (!ok) {
    Finish(t, absl::ResourceExhaustedError("libcurl could not allocate a request"));
    return;
  }
  CURL* e = t->easy.get();
  curl_easy_setopt(e, CURLOPT_URL, t->url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, options.user_agent.c_str());
  // HTTP/1.1 only: a cancelled stream then closes its TCP connection, which is how LM Studio
  // learns that the client went away.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  if (t->method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    if (t->method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
  }
  Arm(t->deadline);
  StartAttempt(t);
}

void HttpClient::Core::StartAttempt(Transfer* t) {
  absl::Time now = absl::Now();
  if (now >= t->deadline) {
    Finish(t, DeadlineError(*t));
    return;
  }
  t->retry_at = absl::InfiniteFuture();
  t->mode_decided = t->deliver = false;
  t->response = HttpResponse{};
  t->local_error = absl::OkStatus();
  t->errbuf[0] = '\0';
  t->last_activity = now;
  CURLMcode rc = curl_multi_add_handle(multi.get(), t->easy.get());
  if (rc != CURLM_OK) {
    Finish(t, absl::InternalError(absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(rc))));
    return;
  }
  t->in_multi = true;
  ++attempts;
  if (t->stream) Arm(now + t->idle);
}

void HttpClient::Core::OnAttemptDone(Transfer* t, CURLcode result) {
  curl_multi_remove_handle(multi.get(), t->easy.get());
  t->in_multi = false;
  long new_connections = 0;
  curl_easy_getinfo(t->easy.get(), CURLINFO_NUM_CONNECTS, &new_connections);
  connections += new_connections;
  if (!t->mode_decided) {
    long code = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &code);
    t->response.status = static_cast<int>(code);
  }
  RequestInfo info = t->info(options.base_url);
  absl::Status status;
  if (t->control->cancelled.load()) {
    status = absl::CancelledError(absl::StrCat("request to LM Studio at ", options.base_url, " (",
                                               t->method, " ", t->path, ") cancelled"));
  } else if (!t->local_error.ok()) {
    status = t->local_error;
  } else if (result != CURLE_OK) {
    curl_off_t connect_us = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_CONNECT_TIME_T, &connect_us);
    status = StatusFromTransport(result, t->errbuf, connect_us > 0, info);
  } else if (!t->deliver) {
    status = StatusFromHttpResponse(t->response.status, t->response.body, info);
  }
  if (!status.ok()) {
    AttemptOutcome outcome{status, IsIdempotent(t->method, t->idempotent), t->delivered,
                           t->retries_done};
    if (ShouldRetry(options.retry, outcome)) {
      absl::Duration delay = Backoff(options.retry, t->retries_done, UnitRandom());
      absl::Time now = absl::Now();
      if (now + delay < t->deadline) {
        ++t->retries_done;
        ++retries;
        t->retry_at = now + delay;
        Arm(t->retry_at);
        RequestLog(HttpLog(), t->request_id)
            .info("retry {}/{} of {} {} in {}: {}", t->retries_done, options.retry.max_retries,
                  t->method, t->path, absl::FormatDuration(delay), status.ToString());
        return;
      }
    }
  }
  Finish(t, std::move(status));
}

void HttpClient::Core::ScanTimers(absl::Time now) {
  next_timer = absl::InfiniteFuture();
  std::vector<std::pair<Transfer*, absl::Status>> expired;
  std::vector<Transfer*> due;
  for (auto& [id, owned] : transfers) {
    Transfer* t = owned.get();
    if (now >= t->deadline) {
      expired.emplace_back(t, DeadlineError(*t));
      continue;
    }
    Arm(t->deadline);
    if (t->in_multi && t->stream) {
      if (now - t->last_activity >= t->idle) {
        expired.emplace_back(
            t, absl::UnavailableError(absl::StrCat(
                   "LM Studio at ", options.base_url, " sent nothing for ",
                   absl::FormatDuration(t->idle), " on ", t->method, " ", t->path)));
        continue;
      }
      Arm(t->last_activity + t->idle);
    } else if (!t->in_multi) {
      if (now >= t->retry_at) {
        due.push_back(t);
      } else {
        Arm(t->retry_at);
      }
    }
  }
  for (auto& [t, status] : expired) Finish(t, std::move(status));
  for (Transfer* t : due) StartAttempt(t);
}

void HttpClient::Core::Finish(Transfer* t, absl::Status status) {
  if (t->in_multi) {
    // Removing a transfer that is still running makes libcurl close its connection.
    curl_multi_remove_handle(multi.get(), t->easy.get());
    t->in_multi = false;
  }
  if (t->token && t->token_callback != 0) t->token->RemoveCallback(t->token_callback);
  if (!status.ok()) {
    RequestLog(HttpLog(), t->request_id)
        .debug("{} {} failed: {}", t->method, t->path, status.ToString());
  }
  auto on_done = std::move(t->callbacks.on_done);
  HttpResponse response = std::move(t->response);
  if (t->delivered) response.body.clear();
  transfers.erase(t->control->id);  // destroys `t`
  --active;
  if (on_done) on_done(std::move(status), std::move(response));
}

HttpClient::HttpClient(std::string base_url, std::shared_ptr<Core> core)
    : base_url_(std::move(base_url)), core_(std::move(core)) {}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(Options options) {
  if (options.base_url.empty()) return absl::InvalidArgumentError("HttpClient: empty base_url");
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  if (CURLcode rc = EnsureCurlGlobalInit(); rc != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(rc)));
  }
  std::string base = options.base_url;
  auto core = std::make_shared<Core>(std::move(options));
  core->multi.reset(curl_multi_init());
  if (!core->multi) return absl::InternalError("curl_multi_init failed");
  core->loop = std::thread([raw = core.get()] { raw->Run(); });
  core->loop_id = core->loop.get_id();
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(base), std::move(core)));
}

HttpClient::~HttpClient() { Shutdown(); }

void HttpClient::Shutdown() {
  {
    absl::MutexLock lock(&core_->mu);
    core_->stopping = true;
  }
  curl_multi_wakeup(core_->multi.get());
  // Serialises concurrent Shutdown() calls: the first joins, the others wait for it.
  absl::MutexLock lock(&core_->join_mu);
  if (core_->loop.joinable()) core_->loop.join();
}

std::shared_ptr<StreamHandle> HttpClient::StartStream(const CallContext& ctx,
                                                      const HttpRequest& request,
                                                      StreamCallbacks callbacks,
                                                      absl::string_view stream_content_type) {
  auto t = std::make_unique<Transfer>();
  t->control = std::make_shared<TransferControl>(core_->next_id.fetch_add(1));
  t->method = request.method;
  t->path = request.path;
  t->url = absl::StrCat(base_url_, request.path);
  t->body = request.body;
  t->request_id = ctx.request_id;
  t->traceparent = ctx.traceparent;
  t->idempotent = request.idempotent;
  t->stream = !stream_content_type.empty();
  t->stream_content_type = std::string(stream_content_type);
  t->idle = core_->options.idle_timeout;
  t->max_buffered = core_->options.max_buffered_body;
  t->callbacks = std::move(callbacks);
  t->deadline = ctx.deadline;
  t->deadline_is_callers = true;
  if (request.timeout && absl::Now() + *request.timeout < t->deadline) {
    t->deadline = absl::Now() + *request.timeout;
    t->deadline_is_callers = false;
  }
  auto control = t->control;
  auto handle = std::make_shared<StreamHandleImpl>(core_, control);
  if (ctx.cancel) {
    t->token = ctx.cancel;
    std::weak_ptr<Core> weak = core_;
    // May run at once (already cancelled): the cancel then precedes the add in the queue and
    // Add() sees the flag.
    t->token_callback = ctx.cancel->AddCallback([weak, control] {
      if (auto core = weak.lock()) core->RequestCancel(*control);
    });
  }
  ++core_->calls;
  ++core_->active;
  Core::Command cmd;
  cmd.add = std::move(t);
  if (!core_->Post(cmd)) {
    Transfer* rejected = cmd.add.get();
    if (rejected->token && rejected->token_callback != 0) {
      rejected->token->RemoveCallback(rejected->token_callback);
    }
    --core_->active;
    if (rejected->callbacks.on_done) {
      rejected->callbacks.on_done(
          absl::CancelledError(absl::StrCat("HTTP client for LM Studio at ", base_url_,
                                            " is shutting down")),
          HttpResponse{});
    }
  }
  return handle;
}

absl::StatusOr<HttpResponse> HttpClient::Do(const CallContext& ctx, const HttpRequest& request) {
  if (std::this_thread::get_id() == core_->loop_id) {
    return absl::InternalError("HttpClient::Do called on the HTTP loop thread");
  }
  struct State {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    absl::StatusOr<HttpResponse> result ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  HttpRequest capped = request;
  if (!capped.timeout) capped.timeout = core_->options.request_timeout;
  StreamCallbacks callbacks;
  callbacks.on_done = [state](absl::Status status, HttpResponse response) {
    absl::MutexLock lock(&state->mu);
    if (status.ok()) {
      state->result = std::move(response);
    } else {
      state->result = std::move(status);
    }
    state->done = true;
  };
  StartStream(ctx, capped, std::move(callbacks), /*stream_content_type=*/"");
  absl::MutexLock lock(&state->mu);
  state->mu.Await(absl::Condition(&state->done));
  return std::move(state->result);
}

HttpClient::Stats HttpClient::stats() const {
  Stats s;
  s.calls = core_->calls.load();
  s.attempts = core_->attempts.load();
  s.retries = core_->retries.load();
  s.connections_opened = core_->connections.load();
  s.active = core_->active.load();
  return s;
}

}  // namespace lmgate::backends::http
