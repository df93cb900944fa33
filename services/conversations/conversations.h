// Conversations: a Chat that continues a stored conversation and/or stores its turn, on top of
// Gateway::Generate. Shared by every ingress (gRPC Chat with previous_response_id/store, HTTP
// /v1/responses), so both read and write the one ConversationStore.
//
// One call, left to right: (worker thread) the previous response, for this tenant only
// (NOT_FOUND otherwise) → the instructions (this turn's, else the stored ones) → token counts
// (context.h; each message is counted once, stored turns keep theirs) → the context policy
// (drop the oldest turns under truncation AUTO, INVALID_ARGUMENT under DISABLED) → the request
// to the gateway is instructions + kept turns + the new input → Gateway::Generate, whose events
// pass through unchanged → on success only, the new turn is stored and the outcome carries its
// response id (a failed or cancelled call stores nothing).
//
// Thread-safe. The store, gateway, counter and scheduler must outlive every call (the server
// owns them; it drains its worker pool before destroying the gateway).
#ifndef LMGATE_SERVICES_CONVERSATIONS_CONVERSATIONS_H_
#define LMGATE_SERVICES_CONVERSATIONS_CONVERSATIONS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "services/conversations/context.h"
#include "services/conversations/store.h"
#include "services/gateway/gateway.h"

namespace lmgate::conversations {

struct ConversationCall {
  // call.request.messages is the new input only. Leading system messages in it are this turn's
  // instructions unless `instructions` is set; the rest must not be empty. call.model empty: the
  // previous response's model, else the default model.
  gateway::GenerateCall call;
  std::string previous_response_id;  // "" = a new conversation
  bool store = false;
  std::optional<std::string> instructions;  // unset: the input's system messages, else stored
  Truncation truncation = Truncation::kDisabled;
  // The id to store the turn under ("" = a new NewResponseId()), for an ingress that announces
  // it before the answer (a streamed POST /v1/responses).
  std::string response_id;
};

// The longest previous_response_id accepted (INVALID_ARGUMENT beyond; lmgate's ids are 37).
inline constexpr size_t kMaxResponseIdBytes = 128;

class Conversations {
 public:
  struct Options {
    ConversationStore* store = nullptr;
    gateway::Gateway* gateway = nullptr;
    TokenCounter* counter = nullptr;
    // Runs blocking work (the store, token counting) off the caller's thread.
    std::function<void(std::function<void()>)> schedule;
  };
  explicit Conversations(Options options) : options_(std::move(options)) {}

  // Never blocks; the sink gets Gateway::Generate's callbacks (OnComplete exactly once, also for
  // a call refused before the gateway: NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED).
  // The returned control cancels the call in every phase.
  std::shared_ptr<gateway::GenerateControl> Generate(const backends::CallContext& ctx,
                                                     ConversationCall call,
                                                     std::shared_ptr<gateway::GenerateSink> sink);

  ConversationStore& store() { return *options_.store; }

 private:
  class Control;
  class StoringSink;
  struct Prepared;
  // The conversation to send, or why not (on the worker thread).
  absl::StatusOr<Prepared> Prepare(const backends::CallContext& ctx, ConversationCall& call);

  const Options options_;
};

}  // namespace lmgate::conversations

#endif  // LMGATE_SERVICES_CONVERSATIONS_CONVERSATIONS_H_
