// Stored conversations (OpenAI's "stored responses"): what `previous_response_id` continues.
// A stored response holds the whole conversation as it was sent to the model for that turn (the
// instructions, then every turn: its input messages and the model's output), so continuing from
// it needs nothing else. Each response is its own entry; turns are shared between the entries of
// one conversation (immutable), but every entry counts all of its bytes, so the bounds hold even
// when older entries of the conversation are gone.
//
// ConversationStore is the narrow interface every ingress uses (gRPC Chat, HTTP /v1/responses);
// InProcessConversationStore keeps entries in this process; a shared implementation (Redis) can
// replace it without the callers knowing.
#ifndef LMGATE_SERVICES_CONVERSATIONS_STORE_H_
#define LMGATE_SERVICES_CONVERSATIONS_STORE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/types.h"
#include "services/admission/clock.h"

namespace lmgate::conversations {

// One exchange: what the caller sent (user, tool results, ...) and what the model answered
// (one assistant message: its text and tool calls).
struct Turn {
  std::vector<backends::Message> input;
  backends::Message output;
  // Tokens of input + output under the model's tokenizer (or the estimate, context.h); 0 =
  // not counted yet.
  int tokens = 0;
};

struct StoredResponse {
  std::string id;               // "resp_" + 32 hex digits (NewResponseId)
  std::string tenant;           // only this tenant may read, continue or delete it
  std::string model;            // as the caller named it
  std::string instructions;     // system prompt; "" = none
  int instructions_tokens = 0;  // 0 = not counted
  // The conversation as sent for this response (after truncation), its own turn last.
  std::vector<std::shared_ptr<const Turn>> turns;
  absl::Time created;
  // Usage of this response's generation.
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// Bytes a response accounts for: its strings plus a fixed overhead per message.
size_t ResponseBytes(const StoredResponse& response);

// A fresh unguessable id: "resp_" + 32 lowercase hex digits (128 random bits).
std::string NewResponseId();

// Thread-safe (every implementation).
class ConversationStore {
 public:
  virtual ~ConversationStore() = default;
  // Stores `response` (its id must be new). RESOURCE_EXHAUSTED naming the limit when the one
  // response is over the per-conversation (or the total) byte bound; older entries are evicted,
  // oldest first, to make room for it under the entry and byte bounds.
  virtual absl::Status Put(StoredResponse response) = 0;
  // NOT_FOUND (the same message) for an unknown id, an expired one, and one of another tenant.
  virtual absl::StatusOr<std::shared_ptr<const StoredResponse>> Get(const std::string& tenant,
                                                                    const std::string& id) = 0;
  // NOT_FOUND as Get.
  virtual absl::Status Delete(const std::string& tenant, const std::string& id) = 0;
  // What a conversation may hold (ResponseBytes); callers refuse a turn that cannot fit before
  // generating it.
  virtual size_t max_conversation_bytes() const = 0;
};

struct StoreOptions {
  // A response is gone this long after it was stored (config conversations.ttl_seconds).
  absl::Duration ttl = absl::Hours(1);
  // Entries kept at most; the oldest go first (conversations.max_entries).
  size_t max_entries = 10000;
  // Bytes (ResponseBytes) kept at most over all entries (conversations.max_bytes).
  size_t max_bytes = size_t{64} << 20;
  // Bytes one response may hold (conversations.max_conversation_bytes).
  size_t max_conversation_bytes = size_t{1} << 20;
};

// Entries in a map, in insertion (= creation) order for expiry and eviction. `clock` (null =
// admission::RealClock()) must outlive the store. Expired entries are dropped on Put and never
// answered by Get.
class InProcessConversationStore final : public ConversationStore {
 public:
  explicit InProcessConversationStore(StoreOptions options, admission::Clock* clock = nullptr);

  absl::Status Put(StoredResponse response) override;
  absl::StatusOr<std::shared_ptr<const StoredResponse>> Get(const std::string& tenant,
                                                            const std::string& id) override;
  absl::Status Delete(const std::string& tenant, const std::string& id) override;
  size_t max_conversation_bytes() const override { return options_.max_conversation_bytes; }

  size_t entries() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::shared_ptr<const StoredResponse> response;
    size_t bytes = 0;
    std::list<std::string>::iterator order;
  };
  // Removes expired entries from the front, then the oldest while over the bounds with
  // `incoming` more bytes and one more entry.
  void EvictLocked(size_t incoming) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StoreOptions options_;
  admission::Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> order_ ABSL_GUARDED_BY(mu_);  // oldest first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lmgate::conversations

#endif  // LMGATE_SERVICES_CONVERSATIONS_STORE_H_
