// POST /v1/responses, GET and DELETE /v1/responses/{id}: OpenAI's Responses API on the
// conversation store the gRPC Chat shares (services/conversations). The body → the same
// GenerateCall a gRPC Chat makes (services/convert.h validates it) plus the conversation fields →
// Conversations::Generate, whose progress the sink below turns into one Response object or the
// Responses SSE events.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/call_util.h"
#include "services/convert.h"
#include "services/http_ingress/openai_request.h"
#include "services/http_ingress/openai_response.h"
#include "services/http_ingress/responses_format.h"
#include "services/http_ingress/routes.h"
#include "services/worker_pool.h"

namespace lmgate::http_ingress {
namespace {

// Calls are sequential (GenerateSink's contract), so the state needs no lock.
class ResponsesSink : public gateway::GenerateSink {
 public:
  ResponsesSink(const RouteEnv& env, HttpCall call, ResponseView view, bool stream)
      : env_(env), call_(std::move(call)), view_(view), format_(std::move(view)), stream_(stream) {}

  void OnDriver(backends::DriverKind driver) override { driver_ = driver; }
  void OnModelLoading(double progress) override {
    if (!stream_) return;
    const int percent = static_cast<int>(progress * 100);
    if (percent == last_percent_) return;
    last_percent_ = percent;
    Emit([&] { return StreamFormat::Comment(absl::StrCat("loading ", percent, "%")); });
  }
  void OnQueued(int position) override {
    if (stream_) Emit([&] { return StreamFormat::Comment(absl::StrCat("queued ", position)); });
  }
  void OnEvent(backends::GenerateEvent e) override {
    if (stream_ && e.kind == backends::GenerateEvent::Kind::kContent && !e.text.empty()) {
      Emit([&] { return format_.TextDelta(e.text); });
    }
  }
  void OnComplete(absl::StatusOr<gateway::GenerateOutcome> outcome) override {
    Complete(std::move(outcome));
    // The exchange's close hook holds the control, which holds this sink: letting go of the
    // exchange once it is answered ends that cycle (else every call's objects leak).
    call_.exchange.reset();
  }

 private:
  void Complete(absl::StatusOr<gateway::GenerateOutcome> outcome) {
    if (env_.core.observer != nullptr) {
      services::CallInfo info = call_.info;
      info.driver = driver_;
      env_.core.observer->Generated(info, outcome);
    }
    const std::shared_ptr<Exchange> ex = call_.exchange;
    if (!outcome.ok()) {
      if (started_) {
        // Never a clean completion after a failure: the client must not take a cut answer.
        Emit([&] {
          return format_.Failed(
              absl::AsciiStrToLower(absl::StatusCodeToString(outcome.status().code())),
              std::string(outcome.status().message()));
        });
        return ex->EndStream();
      }
      HttpResponse r = ErrorResponse(outcome.status());
      for (auto& h : Base()) r.headers.push_back(std::move(h));
      return ex->Respond(std::move(r));
    }
    ResponseView done = view_;
    done.status = "completed";
    if (!outcome->model_key.empty()) done.model = outcome->model_key;
    if (!outcome->response_id.empty()) done.id = outcome->response_id;
    done.result = outcome->result;
    if (stream_) {
      Emit([&] { return format_.Completed(done); });
      return ex->EndStream();
    }
    using S = backends::StopReason;
    const S stop = done.result.stats.stop_reason;
    if (stop == S::kMaxTokens || stop == S::kContextLength) done.status = "incomplete";
    HttpResponse r;
    r.headers = Base();
    r.body = ResponseJson(done);
    ex->Respond(std::move(r));
  }

  Headers Base() const {
    Headers h = call_.BaseHeaders();
    h.emplace_back(services::kDriverHeader, std::string(backends::DriverKindName(driver_)));
    return h;
  }
  // The stream's head (and response.created) go out with the first thing worth streaming, so
  // that refusals before it (unknown previous_response_id, quota, context overflow) keep their
  // HTTP status. `make` runs after response.created is numbered.
  template <typename MakeData>
  void Emit(MakeData make) {
    if (!started_) {
      started_ = true;
      Headers h = Base();
      h.emplace_back("Cache-Control", "no-cache");
      h.emplace_back("X-Accel-Buffering", "no");
      call_.exchange->StartStream(200, "text/event-stream", std::move(h));
      call_.exchange->Write(format_.Created());
    }
    call_.exchange->Write(make());
  }

  const RouteEnv& env_;
  HttpCall call_;
  const ResponseView view_;
  ResponseStream format_;
  const bool stream_;
  backends::DriverKind driver_ = backends::DriverKind::kAuto;
  bool started_ = false;
  int last_percent_ = -1;
};

// GET/DELETE's id, or why not (answered).
bool CheckId(const RouteEnv& env, HttpCall& call, const std::string& id) {
  if (id.size() <= conversations::kMaxResponseIdBytes) return true;
  call.Fail(env, InvalidField("id", absl::StrCat("longer than ", conversations::kMaxResponseIdBytes,
                                                 " bytes, so not an id lmgate issued")));
  return false;
}

// Store calls may block (a shared store is remote): on the worker pool.
void OnPool(const RouteEnv& env, HttpCall call, std::function<void(HttpCall&)> work) {
  env.core.pool->Schedule(
      [call = std::move(call), work = std::move(work)]() mutable { work(call); });
}

}  // namespace

void HandleCreateResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/responses");
  if (!call) return;
  if (env.core.conversations == nullptr) {
    return call->Fail(env, absl::FailedPreconditionError("this server keeps no conversations"));
  }
  auto body = ParseResponsesBody(ex->request().body, env.max_json_depth());
  if (!body.ok()) return call->Fail(env, body.status());
  services::ValidationLimits limits;
  limits.max_json_depth = env.max_json_depth();
  auto gc = services::ToGenerateCall(body->request, limits);
  if (!gc.ok()) {
    return call->Fail(env,
                      absl::Status(gc.status().code(), OpenAiFieldNames(gc.status().message())));
  }
  call->info.model = gc->model.empty() ? env.core.gateway->default_model() : gc->model;
  gc->tenant = call->tenant;
  conversations::ConversationCall cc;
  cc.call = *std::move(gc);
  cc.previous_response_id = body->previous_response_id;
  cc.store = body->store;
  cc.instructions = body->instructions;
  cc.truncation = body->truncation;
  // Streamed answers announce the id first; an unstored response has one too, never stored.
  cc.response_id = conversations::NewResponseId();
  ResponseView view = ViewOf(*body, cc.response_id, call->info.model, UnixNow());
  const backends::CallContext ctx = call->ctx;
  auto sink = std::make_shared<ResponsesSink>(env, *std::move(call), std::move(view), body->stream);
  std::shared_ptr<gateway::GenerateControl> control =
      env.core.conversations->Generate(ctx, std::move(cc), std::move(sink));
  // A client that goes away (or a shutdown past its grace) cancels the upstream prediction.
  ex->SetOnClose([control] { control->Cancel(); });
}

void HandleGetResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex, const std::string& id) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/responses/{id}");
  if (!call || !CheckId(env, *call, id)) return;
  if (env.core.conversations == nullptr) return call->Fail(env, absl::NotFoundError(id));
  OnPool(env, *std::move(call), [&env, id](HttpCall& c) {
    auto stored = env.core.conversations->store().Get(c.tenant->name, id);
    if (!stored.ok()) return c.Fail(env, stored.status());
    c.RespondJson(env, ResponseJson(ViewOf(**stored)));
  });
}

void HandleDeleteResponse(const RouteEnv& env, std::shared_ptr<Exchange> ex,
                          const std::string& id) {
  auto call = HttpCall::Begin(env, ex, "http:/v1/responses/{id}");
  if (!call || !CheckId(env, *call, id)) return;
  if (env.core.conversations == nullptr) return call->Fail(env, absl::NotFoundError(id));
  OnPool(env, *std::move(call), [&env, id](HttpCall& c) {
    if (auto st = env.core.conversations->store().Delete(c.tenant->name, id); !st.ok()) {
      return c.Fail(env, st);
    }
    c.RespondJson(env, DeletedJson(id));
  });
}

}  // namespace lmgate::http_ingress
