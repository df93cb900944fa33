#include "services/conversations/conversations.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace lmgate::conversations {

struct Conversations::Prepared {
  std::string tenant;
  std::string model;
  std::string instructions;
  int instructions_tokens = 0;
  std::vector<std::shared_ptr<const Turn>> kept;  // stored turns sent this time, oldest first
  std::vector<backends::Message> input;           // the new turn's input
  int input_tokens = 0;
};

// Cancels the call in whichever phase it is: token counting (the context's cancel token), then
// the gateway's call once it started.
class Conversations::Control final : public gateway::GenerateControl {
 public:
  explicit Control(std::shared_ptr<backends::CancelToken> token) : token_(std::move(token)) {}
  void Cancel() override {
    std::shared_ptr<gateway::GenerateControl> inner;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      inner = inner_;
    }
    token_->Cancel();
    if (inner) inner->Cancel();
  }
  // False when Cancel() came first (the caller then cancels `inner` itself).
  bool Attach(std::shared_ptr<gateway::GenerateControl> inner) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return false;
    inner_ = std::move(inner);
    return true;
  }

 private:
  const std::shared_ptr<backends::CancelToken> token_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<gateway::GenerateControl> inner_ ABSL_GUARDED_BY(mu_);
};

// Passes the gateway's callbacks through; on success stores the turn first (if asked) and puts
// its id in the outcome.
class Conversations::StoringSink final : public gateway::GenerateSink {
 public:
  StoringSink(std::shared_ptr<gateway::GenerateSink> inner, ConversationStore* store,
              Prepared prepared, std::string id)
      : inner_(std::move(inner)),
        store_(store),
        prepared_(std::move(prepared)),
        id_(id.empty() ? NewResponseId() : std::move(id)) {}

  void OnDriver(backends::DriverKind driver) override { inner_->OnDriver(driver); }
  void OnModelLoading(double progress) override { inner_->OnModelLoading(progress); }
  void OnQueued(int position) override { inner_->OnQueued(position); }
  void OnEvent(backends::GenerateEvent event) override { inner_->OnEvent(std::move(event)); }
  void OnComplete(absl::StatusOr<gateway::GenerateOutcome> outcome) override {
    if (outcome.ok() && store_ != nullptr) {
      absl::StatusOr<std::string> id = Store(*outcome);
      if (!id.ok()) {
        inner_->OnComplete(id.status());
        return;
      }
      outcome->response_id = *std::move(id);
    }
    inner_->OnComplete(std::move(outcome));
  }

 private:
  absl::StatusOr<std::string> Store(const gateway::GenerateOutcome& outcome) {
    auto turn = std::make_shared<Turn>();
    turn->input = std::move(prepared_.input);
    turn->output.role = "assistant";
    turn->output.content = outcome.result.content;
    turn->output.tool_calls = outcome.result.tool_calls;
    // The host's own count of the output when it reports one; the template's overhead on top.
    const int completion = outcome.result.stats.completion_tokens;
    turn->tokens = prepared_.input_tokens + (completion > 0 ? completion + kMessageOverheadTokens
                                                            : EstimateTokens(turn->output));
    StoredResponse r;
    r.id = id_;
    r.tenant = std::move(prepared_.tenant);
    r.model = std::move(prepared_.model);
    r.instructions = std::move(prepared_.instructions);
    r.instructions_tokens = prepared_.instructions_tokens;
    r.turns = std::move(prepared_.kept);
    r.turns.push_back(std::move(turn));
    r.prompt_tokens = outcome.result.stats.prompt_tokens;
    r.completion_tokens = completion;
    std::string id = r.id;
    if (auto st = store_->Put(std::move(r)); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("the response was not stored: ", st.message()));
    }
    return id;
  }

  const std::shared_ptr<gateway::GenerateSink> inner_;
  ConversationStore* const store_;  // null: do not store
  Prepared prepared_;
  const std::string id_;
};

std::shared_ptr<gateway::GenerateControl> Conversations::Generate(
    const backends::CallContext& ctx, ConversationCall call,
    std::shared_ptr<gateway::GenerateSink> sink) {
  backends::CallContext call_ctx = ctx;
  if (!call_ctx.cancel) call_ctx.cancel = std::make_shared<backends::CancelToken>();
  auto control = std::make_shared<Control>(call_ctx.cancel);
  options_.schedule([this, call_ctx = std::move(call_ctx), call = std::move(call),
                     sink = std::move(sink), control]() mutable {
    if (auto st = call_ctx.CheckAlive(); !st.ok()) {
      sink->OnComplete(st);
      return;
    }
    absl::StatusOr<Prepared> prepared = Prepare(call_ctx, call);
    if (!prepared.ok()) {
      sink->OnComplete(prepared.status());
      return;
    }
    auto storing =
        std::make_shared<StoringSink>(std::move(sink), call.store ? options_.store : nullptr,
                                      *std::move(prepared), std::move(call.response_id));
    std::shared_ptr<gateway::GenerateControl> inner =
        options_.gateway->Generate(call_ctx, std::move(call.call), std::move(storing));
    if (!control->Attach(inner)) inner->Cancel();
  });
  return control;
}

absl::StatusOr<Conversations::Prepared> Conversations::Prepare(const backends::CallContext& ctx,
                                                               ConversationCall& call) {
  Prepared p;
  const admission::Tenant* tenant = call.call.tenant;
  p.tenant = tenant != nullptr ? tenant->name : "";
  std::shared_ptr<const StoredResponse> previous;
  if (call.previous_response_id.size() > kMaxResponseIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("previous_response_id: longer than ",
                                                   kMaxResponseIdBytes,
                                                   " bytes, so not an id lmgate issued"));
  }
  if (!call.previous_response_id.empty()) {
    auto got = options_.store->Get(p.tenant, call.previous_response_id);
    if (!got.ok()) return got.status();
    previous = *std::move(got);
  }
  auto& messages = call.call.request.messages;
  size_t first = 0;
  std::string system;
  if (!call.instructions) {
    for (; first < messages.size() && messages[first].role == "system"; ++first) {
      absl::StrAppend(&system, system.empty() ? "" : "\n\n", messages[first].content);
    }
  }
  p.input.assign(std::make_move_iterator(messages.begin() + first),
                 std::make_move_iterator(messages.end()));
  if (p.input.empty()) {
    return absl::InvalidArgumentError(
        "input: a conversation turn needs at least one message besides the instructions "
        "(system messages)");
  }
  if (call.instructions) {
    p.instructions = *call.instructions;
  } else if (first > 0) {
    p.instructions = std::move(system);
  } else if (previous) {
    p.instructions = previous->instructions;
  }
  if (call.call.model.empty() && previous) call.call.model = previous->model;
  p.model = call.call.model;

  // Counting first also loads the model, so its context length is known afterwards.
  auto count = [&](const std::vector<backends::Message>& m) {
    return options_.counter->Count(ctx, tenant, p.model, m);
  };
  p.input_tokens = count(p.input);
  if (!p.instructions.empty()) {
    if (previous && previous->instructions == p.instructions && previous->instructions_tokens > 0) {
      p.instructions_tokens = previous->instructions_tokens;
    } else {
      backends::Message sys;
      sys.role = "system";
      sys.content = p.instructions;
      p.instructions_tokens = count({sys});
    }
  }
  if (auto st = ctx.CheckAlive(); !st.ok()) return st;

  FitRequest fit;
  fit.context_length = ContextLengthFor(*options_.gateway, p.model);
  fit.reserve = call.call.request.sampling.max_tokens.value_or(0);
  fit.fixed_tokens = p.instructions_tokens + p.input_tokens + kPromptOverheadTokens;
  fit.truncation = call.truncation;
  std::vector<std::shared_ptr<const Turn>> turns;
  if (previous) turns = previous->turns;
  for (auto& turn : turns) {
    if (turn->tokens <= 0) {  // stored before it was counted (not by this class): count now
      auto counted = std::make_shared<Turn>(*turn);
      counted->tokens = count(counted->input) + count({counted->output});
      turn = std::move(counted);
    }
    fit.turn_tokens.push_back(turn->tokens);
  }
  auto drop = OldestTurnsToDrop(fit);
  if (!drop.ok()) return drop.status();
  p.kept.assign(turns.begin() + *drop, turns.end());

  if (call.store) {
    // The stored response will hold at least this much; refuse before generating.
    StoredResponse draft;
    draft.instructions = p.instructions;
    draft.turns = p.kept;
    auto input_turn = std::make_shared<Turn>();
    input_turn->input = p.input;
    draft.turns.push_back(input_turn);
    const size_t max = options_.store->max_conversation_bytes();
    while (ResponseBytes(draft) > max && call.truncation == Truncation::kAuto &&
           draft.turns.size() > 1) {
      draft.turns.erase(draft.turns.begin());
      p.kept.erase(p.kept.begin());
    }
    if (const size_t bytes = ResponseBytes(draft); bytes > max) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the conversation would be ", bytes,
                       " bytes, over conversations.max_conversation_bytes=", max,
                       call.truncation == Truncation::kAuto
                           ? " even with only the instructions and the new input"
                           : "; set truncation to auto to drop the oldest turns, or start a new "
                             "conversation"));
    }
  }

  std::vector<backends::Message> send;
  if (!p.instructions.empty()) {
    backends::Message sys;
    sys.role = "system";
    sys.content = p.instructions;
    send.push_back(std::move(sys));
  }
  for (const auto& turn : p.kept) {
    send.insert(send.end(), turn->input.begin(), turn->input.end());
    send.push_back(turn->output);
  }
  send.insert(send.end(), p.input.begin(), p.input.end());
  messages = std::move(send);
  return p;
}

}  // namespace lmgate::conversations
