// The context policy of a stored conversation: what of it is sent to the model each turn.
//
//   truncation DISABLED (OpenAI's default): the whole conversation is sent; if it does not fit
//     the model's context length it is refused with INVALID_ARGUMENT, nothing generated.
//   truncation AUTO: the instructions and the new input are always kept; the oldest turns are
//     dropped until the rest fits.
// "Fits" means instructions + kept turns + new input + kPromptOverheadTokens + the output
// reserve (max_tokens, when the request sets it) <= the context length. Tokens are counted with
// the model's tokenizer (Gateway::Tokenize, where a driver has one: sdk_ws) and otherwise
// estimated (EstimateTokens).
//
// Thread-safety: free functions are pure; TokenCounter implementations are thread-safe.
#ifndef LMGATE_SERVICES_CONVERSATIONS_CONTEXT_H_
#define LMGATE_SERVICES_CONVERSATIONS_CONTEXT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/types.h"
#include "services/admission/identity.h"
#include "services/gateway/gateway.h"

namespace lmgate::conversations {

enum class Truncation { kDisabled, kAuto };

// Tokens a chat template adds around one message (role markers, separators: ChatML and Llama 3
// use 5) and once per prompt (the assistant's generation prompt, BOS), with a margin.
inline constexpr int kMessageOverheadTokens = 6;
inline constexpr int kPromptOverheadTokens = 8;

// The estimate when no tokenizer answers: one token per 3 bytes (rounded up) of the message's
// text, tool-call names and arguments, plus kMessageOverheadTokens. Real tokenizers average
// about 4 bytes per token on English text, so it errs towards dropping a turn too many.
int EstimateTokens(const backends::Message& message);

// Counts the tokens of `messages` together (one turn) for `model` on behalf of `tenant`.
// Blocking (may call the host); never fails: without a tokenizer it falls back to
// EstimateTokens.
class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  virtual int Count(const backends::CallContext& ctx, const admission::Tenant* tenant,
                    const std::string& model, const std::vector<backends::Message>& messages) = 0;
};

// EstimateTokens for everything.
class EstimateTokenCounter final : public TokenCounter {
 public:
  int Count(const backends::CallContext&, const admission::Tenant*, const std::string&,
            const std::vector<backends::Message>& messages) override;
};

// The model's tokenizer through Gateway::Tokenize, one call for all of `messages` (the same
// grant as a Tokenize RPC: it loads the model if needed and counts toward the tenant's
// requests_per_minute), plus kMessageOverheadTokens per message; EstimateTokens when the call
// fails (no driver with a tokenizer, quota, host down). `gateway` must outlive it.
class GatewayTokenCounter final : public TokenCounter {
 public:
  explicit GatewayTokenCounter(gateway::Gateway* gateway) : gateway_(gateway) {}
  int Count(const backends::CallContext& ctx, const admission::Tenant* tenant,
            const std::string& model, const std::vector<backends::Message>& messages) override;

 private:
  gateway::Gateway* const gateway_;
};

// The context length requests for `model` (key or instance identifier) get: the instance's when
// the name is an identifier, else the smallest of the model's READY instances, else the
// configured load setting (models.<key>.context_length), else the model's maximum; 0 = unknown
// (nothing is checked or truncated).
int ContextLengthFor(gateway::Gateway& gateway, const std::string& model);

struct FitRequest {
  int context_length = 0;        // 0 = unknown: everything fits
  int reserve = 0;               // tokens kept free for the output (max_tokens)
  int fixed_tokens = 0;          // instructions + the new input: never dropped
  std::vector<int> turn_tokens;  // the stored turns, oldest first
  Truncation truncation = Truncation::kDisabled;
};

// How many of the oldest turns to drop. INVALID_ARGUMENT with the figures when nothing fits:
// under DISABLED whenever the whole conversation does not fit, under AUTO when the instructions
// and the new input alone do not.
absl::StatusOr<size_t> OldestTurnsToDrop(const FitRequest& request);

}  // namespace lmgate::conversations

#endif  // LMGATE_SERVICES_CONVERSATIONS_CONTEXT_H_
