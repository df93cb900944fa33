// POST /v1/chat/completions and /v1/completions: the OpenAI body → the same GenerateCall a gRPC
// Chat/Complete makes (services/convert.h validates it) → Gateway::Generate, whose progress the
// sink below turns into one JSON answer or an SSE stream.
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/call_util.h"
#include "services/convert.h"
#include "services/http_ingress/openai_request.h"
#include "services/http_ingress/openai_response.h"
#include "services/http_ingress/routes.h"

namespace lmgate::http_ingress {
namespace {

// Calls are sequential (GenerateSink's contract), so the state needs no lock.
class HttpGenerateSink : public gateway::GenerateSink {
 public:
  HttpGenerateSink(const RouteEnv& env, HttpCall call, AnswerId id, StreamOptions stream)
      : env_(env), call_(std::move(call)), format_(id), id_(std::move(id)), stream_(stream) {}

  void OnDriver(backends::DriverKind driver) override { driver_ = driver; }
  void OnModelLoading(double progress) override {
    if (!stream_.stream) return;
    const int percent = static_cast<int>(progress * 100);
    if (percent == last_percent_) return;
    last_percent_ = percent;
    Send(StreamFormat::Comment(absl::StrCat("loading ", percent, "%")));
  }
  void OnQueued(int position) override {
    if (stream_.stream) Send(StreamFormat::Comment(absl::StrCat("queued ", position)));
  }
  void OnEvent(backends::GenerateEvent e) override {
    if (!stream_.stream) return;
    std::string chunk = format_.Event(e);
    if (!chunk.empty()) Send(std::move(chunk));
  }
  void OnComplete(absl::StatusOr<gateway::GenerateOutcome> outcome) override {
    if (env_.core.observer != nullptr) {
      services::CallInfo info = call_.info;
      info.driver = driver_;
      env_.core.observer->Generated(info, outcome);
    }
    const auto& ex = call_.exchange;
    if (!outcome.ok()) {
      const ErrorDetail detail{"", outcome.status().code() == absl::StatusCode::kNotFound
                                       ? "model_not_found"
                                       : ""};
      if (started_) {
        // Never a clean [DONE] after a failure: clients must not take a cut answer as whole.
        ex->Write(StreamFormat::Error(ErrorJson(outcome.status(), detail)));
        return ex->EndStream();
      }
      HttpResponse r = ErrorResponse(outcome.status(), detail);
      for (auto& h : Base()) r.headers.push_back(std::move(h));
      return ex->Respond(std::move(r));
    }
    if (!stream_.stream) {
      AnswerId a = id_;
      if (!outcome->model_key.empty()) a.model = outcome->model_key;
      HttpResponse r;
      r.headers = Base();
      r.body = CompletionJson(a, *outcome);
      return ex->Respond(std::move(r));
    }
    Send(format_.Finish(outcome->result));
    if (stream_.include_usage) Send(format_.Usage(outcome->result.stats));
    Send(StreamFormat::Done());
    ex->EndStream();
  }

 private:
  Headers Base() const {
    Headers h = call_.BaseHeaders();
    h.emplace_back(services::kDriverHeader, std::string(backends::DriverKindName(driver_)));
    return h;
  }
  // The stream's head goes out with the first thing worth streaming, so that refusals before
  // it (bad model, quota, permission) keep their HTTP status.
  void Send(std::string data) {
    if (!started_) {
      started_ = true;
      Headers h = Base();
      h.emplace_back("Cache-Control", "no-cache");
      h.emplace_back("X-Accel-Buffering", "no");
      call_.exchange->StartStream(200, "text/event-stream", std::move(h));
    }
    call_.exchange->Write(std::move(data));
  }

  const RouteEnv& env_;
  const HttpCall call_;
  StreamFormat format_;
  const AnswerId id_;
  const StreamOptions stream_;
  backends::DriverKind driver_ = backends::DriverKind::kAuto;
  bool started_ = false;
  int last_percent_ = -1;
};

absl::Status InOpenAiTerms(const absl::Status& st) {
  absl::Status out(st.code(), OpenAiFieldNames(st.message()));
  st.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

void Generate(const RouteEnv& env, std::shared_ptr<Exchange> ex, bool chat) {
  auto call = HttpCall::Begin(env, ex, chat ? "http:/v1/chat/completions" : "http:/v1/completions");
  if (!call) return;
  services::ValidationLimits limits;
  limits.max_json_depth = env.max_json_depth();
  absl::StatusOr<gateway::GenerateCall> gc;
  StreamOptions stream;
  if (chat) {
    auto body = ParseChatBody(ex->request().body, limits.max_json_depth);
    if (!body.ok()) return call->Fail(env, body.status());
    stream = body->stream;
    gc = services::ToGenerateCall(body->request, limits);
  } else {
    auto body = ParseCompletionBody(ex->request().body, limits.max_json_depth);
    if (!body.ok()) return call->Fail(env, body.status());
    stream = body->stream;
    gc = services::ToGenerateCall(body->request, limits);
  }
  if (!gc.ok()) return call->Fail(env, InOpenAiTerms(gc.status()));
  const std::string model = gc->model.empty() ? env.core.gateway->default_model() : gc->model;
  call->info.model = model;
  gc->tenant = call->tenant;
  AnswerId id{chat, absl::StrCat(chat ? "chatcmpl-" : "cmpl-", call->info.request_id), model,
              UnixNow()};
  const backends::CallContext ctx = call->ctx;
  auto sink = std::make_shared<HttpGenerateSink>(env, *std::move(call), std::move(id), stream);
  std::shared_ptr<gateway::GenerateControl> control =
      env.core.gateway->Generate(ctx, *std::move(gc), std::move(sink));
  // A client that goes away (or a shutdown past its grace) cancels the upstream prediction.
  ex->SetOnClose([control] { control->Cancel(); });
}

}  // namespace

void HandleChat(const RouteEnv& env, std::shared_ptr<Exchange> ex) {
  Generate(env, std::move(ex), true);
}

void HandleCompletion(const RouteEnv& env, std::shared_ptr<Exchange> ex) {
  Generate(env, std::move(ex), false);
}

}  // namespace lmgate::http_ingress
