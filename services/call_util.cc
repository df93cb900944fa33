#include "services/call_util.h"

#include <random>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lmgate::services {
namespace {

class UnaryReactor : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryReactor(std::shared_ptr<backends::CancelToken> token) : token_(std::move(token)) {}
  void OnCancel() override { token_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<backends::CancelToken> token_;
};

}  // namespace

std::string RequestIdFor(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(kRequestIdHeader);
  return RequestIdFrom(it == md.end() ? absl::string_view()
                                      : absl::string_view(it->second.data(), it->second.size()));
}

std::string RequestIdFrom(absl::string_view sent) {
  if (!sent.empty() && sent.size() <= 128) {
    bool sane = true;
    for (char c : sent) sane &= (c > 0x20 && c < 0x7f);
    if (sane) return std::string(sent);
  }
  thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrFormat("%016x", rng());
}

namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string TraceparentFor(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("traceparent");
  if (it == md.end()) return "";
  return TraceparentFrom(absl::string_view(it->second.data(), it->second.size()));
}

std::string TraceparentFrom(absl::string_view v) {
  // 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>: 55 characters.
  constexpr size_t kLength = 55;
  if (v.size() < kLength || v.size() > 512) return "";
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return "";
  absl::string_view version = v.substr(0, 2), trace = v.substr(3, 32), parent = v.substr(36, 16),
                    flags = v.substr(53, 2);
  if (!IsLowerHex(version) || !IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return "";
  }
  if (version == "ff" || trace == std::string(32, '0') || parent == std::string(16, '0')) return "";
  // Version 00 has exactly these fields; a later one may add "-..." (forwarded as received).
  if (v.size() > kLength && (version == "00" || v[kLength] != '-')) return "";
  for (char c : v) {
    if (c <= 0x20 || c >= 0x7f) return "";
  }
  return std::string(v);
}

std::string TraceIdOf(const std::string& traceparent) {
  return traceparent.size() >= 35 ? traceparent.substr(3, 32) : "";
}

backends::CallContext MakeCallContext(const grpc::CallbackServerContext* ctx,
                                      const std::string& request_id) {
  backends::CallContext c;
  auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    c.deadline = absl::FromChrono(deadline);
  }
  c.cancel = std::make_shared<backends::CancelToken>();
  c.request_id = request_id;
  c.traceparent = TraceparentFor(ctx);
  return c;
}

CallInfo CallInfoFor(const grpc::CallbackServerContext* ctx, const char* method,
                     const std::string& request_id) {
  CallInfo info;
  info.method = method;
  info.request_id = request_id;
  info.trace_id = TraceIdOf(TraceparentFor(ctx));
  info.peer = ctx->peer();
  return info;
}

grpc::ServerUnaryReactor* RunUnary(
    grpc::CallbackServerContext* ctx, WorkerPool* pool, Observer* observer, const char* method,
    std::function<grpc::Status(const backends::CallContext&, CallInfo* info)> work) {
  const std::string id = RequestIdFor(ctx);
  backends::CallContext call = MakeCallContext(ctx, id);
  ctx->AddInitialMetadata(kRequestIdHeader, id);
  auto* reactor = new UnaryReactor(call.cancel);
  CallInfo info = CallInfoFor(ctx, method, id);
  pool->Schedule([reactor, observer, info, call = std::move(call), work = std::move(work)]() mutable {
    grpc::Status st = work(call, &info);
    if (observer != nullptr) {
      observer->Unary(info, absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                                         st.error_message()));
    }
    reactor->Finish(st);
  });
  return reactor;
}

}  // namespace lmgate::services
