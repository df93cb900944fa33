#include "backends/driver.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::backends {

absl::string_view DriverKindName(DriverKind kind) {
  switch (kind) {
    case DriverKind::kAuto:
      return "auto";
    case DriverKind::kSdk:
      return "sdk_ws";
    case DriverKind::kRest:
      return "rest";
    case DriverKind::kOpenAi:
      return "openai";
    case DriverKind::kCli:
      return "cli";
  }
  return "unknown";
}

StopReason ParseStopReason(absl::string_view text) {
  if (text == "eosFound" || text == "stop") return StopReason::kEos;
  if (text == "stopStringFound") return StopReason::kStopString;
  if (text == "maxPredictedTokensReached" || text == "length") return StopReason::kMaxTokens;
  if (text == "contextLengthReached") return StopReason::kContextLength;
  if (text == "toolCalls" || text == "tool_calls") return StopReason::kToolCalls;
  if (text == "userStopped") return StopReason::kUserStopped;
  if (text == "modelUnloaded") return StopReason::kModelUnloaded;
  return StopReason::kUnspecified;
}

void CancelToken::Cancel() {
  std::vector<std::pair<CallbackId, std::function<void()>>> to_run;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    to_run.swap(callbacks_);
  }
  absl::MutexLock run_lock(&run_mu_);
  for (auto& [id, fn] : to_run) fn();
}

bool CancelToken::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

CancelToken::CallbackId CancelToken::AddCallback(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      CallbackId id = next_id_++;
      callbacks_.emplace_back(id, std::move(fn));
      return id;
    }
  }
  fn();
  return 0;
}

void CancelToken::RemoveCallback(CallbackId id) {
  {
    absl::MutexLock lock(&mu_);
    for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
      if (it->first == id) {
        callbacks_.erase(it);
        return;
      }
    }
  }
  // Not found: it already ran or is running now; wait until running callbacks are done.
  absl::MutexLock run_lock(&run_mu_);
}

void CancelRegistration::Register(const std::shared_ptr<CancelToken>& token,
                                  std::function<void()> fn) {
  if (!token) return;
  // Outside mu_: `fn` runs inline when the token is already cancelled, and may call Complete().
  const CancelToken::CallbackId id = token->AddCallback(std::move(fn));
  {
    absl::MutexLock lock(&mu_);
    if (!completed_) {
      token_ = token;
      id_ = id;
      return;
    }
  }
  if (id != 0) token->RemoveCallback(id);  // the work completed before we registered
}

void CancelRegistration::Complete(bool from_callback) {
  std::shared_ptr<CancelToken> token;
  CancelToken::CallbackId id = 0;
  {
    absl::MutexLock lock(&mu_);
    completed_ = true;
    token = std::move(token_);
    id = id_;
  }
  if (token && id != 0 && !from_callback) token->RemoveCallback(id);
}

absl::Status CallContext::CheckAlive() const {
  if (cancelled()) return absl::CancelledError("the call was cancelled");
  if (absl::Now() >= deadline) return absl::DeadlineExceededError("the call's deadline passed");
  return absl::OkStatus();
}

absl::Status DriverBase::Unsupported(absl::string_view operation) const {
  return absl::UnimplementedError(absl::StrCat("the ", DriverKindName(kind()),
                                               " driver cannot ", operation));
}

absl::Status DriverBase::Probe(const CallContext&) { return absl::OkStatus(); }

absl::StatusOr<std::string> DriverBase::HostVersion(const CallContext&) {
  return Unsupported("tell the LM Studio version");
}

absl::StatusOr<HostModels> DriverBase::ListModels(const CallContext&) {
  return Unsupported("list models");
}

absl::StatusOr<InstanceInfo> DriverBase::Load(const CallContext&, const LoadParams&,
                                              const LoadProgressFn&) {
  return Unsupported("load models");
}

absl::Status DriverBase::Unload(const CallContext&, const std::string&) {
  return Unsupported("unload models");
}

std::unique_ptr<GenerateHandle> DriverBase::Generate(const CallContext&,
                                                     const GenerateRequest& request,
                                                     std::shared_ptr<GenerateObserver> observer) {
  observer->OnComplete(Unsupported(request.chat ? "chat" : "complete text"));
  return std::make_unique<NoopGenerateHandle>();
}

absl::StatusOr<EmbedResult> DriverBase::Embed(const CallContext&, const std::string&,
                                              const std::vector<std::string>&) {
  return Unsupported("compute embeddings");
}

absl::StatusOr<std::vector<int>> DriverBase::Tokenize(const CallContext&, const std::string&,
                                                      const std::string&) {
  return Unsupported("tokenize");
}

absl::StatusOr<int> DriverBase::CountTokens(const CallContext&, const std::string&,
                                            const std::string&) {
  return Unsupported("count tokens");
}

}  // namespace lmgate::backends
