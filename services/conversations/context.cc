#include "services/conversations/context.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lmgate::conversations {
namespace {

// The text a message puts in front of the model (what the estimate and the tokenizer see).
std::string MessageText(const backends::Message& m) {
  std::string text = m.content;
  for (const auto& call : m.tool_calls) absl::StrAppend(&text, " ", call.name, " ", call.arguments);
  return text;
}

}  // namespace

int EstimateTokens(const backends::Message& message) {
  const size_t bytes = MessageText(message).size();
  return static_cast<int>((bytes + 2) / 3) + kMessageOverheadTokens;
}

int EstimateTokenCounter::Count(const backends::CallContext&, const admission::Tenant*,
                                const std::string&,
                                const std::vector<backends::Message>& messages) {
  int n = 0;
  for (const auto& m : messages) n += EstimateTokens(m);
  return n;
}

int GatewayTokenCounter::Count(const backends::CallContext& ctx, const admission::Tenant* tenant,
                               const std::string& model,
                               const std::vector<backends::Message>& messages) {
  if (messages.empty()) return 0;
  // One call for the turn: the texts joined by newlines (a newline is one token of its own, so
  // the sum differs from separate counts by at most one token per message).
  std::string text;
  for (const auto& m : messages) {
    absl::StrAppend(&text, text.empty() ? "" : "\n", MessageText(m));
  }
  auto tokens = gateway_->Tokenize(ctx, backends::DriverKind::kAuto, model, text,
                                   /*used=*/nullptr, tenant);
  if (!tokens.ok()) return EstimateTokenCounter().Count(ctx, tenant, model, messages);
  return static_cast<int>(tokens->size()) +
         kMessageOverheadTokens * static_cast<int>(messages.size());
}

int ContextLengthFor(gateway::Gateway& gateway, const std::string& model) {
  const std::string name = model.empty() ? gateway.default_model() : model;
  auto key = gateway.ResolveModelKey(name);
  if (!key.ok()) return 0;
  int smallest = 0;
  int max_context = 0;
  for (const auto& m : gateway.Snapshot()) {
    if (m.info.key != *key) continue;
    max_context = m.info.max_context_length;
    for (const auto& inst : m.instances) {
      const int ctx = inst.info.context_length;
      if (ctx <= 0) continue;
      if (inst.info.identifier == name) return ctx;
      if (inst.state == lifecycle::State::kReady && (smallest == 0 || ctx < smallest)) {
        smallest = ctx;
      }
    }
  }
  if (smallest > 0) return smallest;
  if (auto policy = gateway.registry().PolicyFor(*key); policy && policy->load.context_length) {
    return *policy->load.context_length;
  }
  return max_context;
}

absl::StatusOr<size_t> OldestTurnsToDrop(const FitRequest& r) {
  if (r.context_length <= 0) return 0;
  const int64_t budget = int64_t{r.context_length} - r.reserve;
  int64_t total = r.fixed_tokens;
  for (int t : r.turn_tokens) total += t;
  if (total <= budget) return 0;
  const std::string reserve =
      r.reserve > 0 ? absl::StrCat(" (", r.reserve, " of them kept for max_output_tokens)") : "";
  if (r.truncation == Truncation::kDisabled) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the conversation is about ", total, " tokens and does not fit the model's context of ",
        r.context_length, " tokens", reserve,
        "; set truncation to auto to drop the oldest turns, or start a new conversation"));
  }
  if (r.fixed_tokens > budget) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the instructions and the new input alone are about ", r.fixed_tokens,
        " tokens and do not fit the model's context of ", r.context_length, " tokens", reserve));
  }
  size_t drop = 0;
  while (total > budget && drop < r.turn_tokens.size()) total -= r.turn_tokens[drop++];
  return drop;
}

}  // namespace lmgate::conversations
