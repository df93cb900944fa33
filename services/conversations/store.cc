#include "services/conversations/store.h"

#include <openssl/rand.h>

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::conversations {
namespace {

// Vector and string headers, roles, ids: what a message costs beyond its text.
constexpr size_t kMessageOverheadBytes = 64;

size_t MessageBytes(const backends::Message& m) {
  size_t n = kMessageOverheadBytes + m.role.size() + m.content.size() + m.tool_call_id.size() +
             m.name.size();
  for (const auto& call : m.tool_calls) {
    n += kMessageOverheadBytes + call.id.size() + call.name.size() + call.arguments.size();
  }
  return n;
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(
      absl::StrCat("no stored response \"", id,
                   "\" (unknown, expired after conversations.ttl_seconds, deleted or evicted)"));
}

}  // namespace

size_t ResponseBytes(const StoredResponse& r) {
  size_t n = kMessageOverheadBytes + r.id.size() + r.tenant.size() + r.model.size() +
             r.instructions.size();
  for (const auto& turn : r.turns) {
    for (const auto& m : turn->input) n += MessageBytes(m);
    n += MessageBytes(turn->output);
  }
  return n;
}

std::string NewResponseId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's CSPRNG does not fail once seeded; keep ids unique regardless.
    static std::atomic<uint64_t> counter{0};
    uint64_t v = counter.fetch_add(1) ^ static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
    for (int i = 0; i < 16; ++i) bytes[i] = static_cast<unsigned char>(v >> ((i % 8) * 8));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "resp_";
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

InProcessConversationStore::InProcessConversationStore(StoreOptions options,
                                                       admission::Clock* clock)
    : options_(options), clock_(clock != nullptr ? clock : admission::RealClock()) {}

absl::Status InProcessConversationStore::Put(StoredResponse response) {
  const size_t bytes = ResponseBytes(response);
  if (bytes > options_.max_conversation_bytes || bytes > options_.max_bytes) {
    const bool per_conversation = bytes > options_.max_conversation_bytes;
    return absl::ResourceExhaustedError(absl::StrCat(
        "the conversation is ", bytes, " bytes, over ",
        per_conversation ? "conversations.max_conversation_bytes=" : "conversations.max_bytes=",
        per_conversation ? options_.max_conversation_bytes : options_.max_bytes,
        "; start a new conversation (no previous_response_id) or use truncation"));
  }
  if (options_.max_entries == 0) {
    return absl::ResourceExhaustedError("conversations.max_entries is 0: nothing can be stored");
  }
  auto stored = std::make_shared<StoredResponse>(std::move(response));
  stored->created = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (entries_.contains(stored->id)) {
    return absl::AlreadyExistsError(absl::StrCat("response id ", stored->id, " is taken"));
  }
  EvictLocked(bytes);
  order_.push_back(stored->id);
  Entry entry;
  entry.bytes = bytes;
  entry.order = std::prev(order_.end());
  const std::string id = stored->id;
  entry.response = std::move(stored);
  entries_.emplace(id, std::move(entry));
  bytes_ += bytes;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const StoredResponse>> InProcessConversationStore::Get(
    const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.response->tenant != tenant ||
      clock_->Now() >= it->second.response->created + options_.ttl) {
    return NotFound(id);
  }
  return it->second.response;
}

absl::Status InProcessConversationStore::Delete(const std::string& tenant, const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.response->tenant != tenant ||
      clock_->Now() >= it->second.response->created + options_.ttl) {
    return NotFound(id);
  }
  EraseLocked(id);
  return absl::OkStatus();
}

size_t InProcessConversationStore::entries() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t InProcessConversationStore::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

void InProcessConversationStore::EvictLocked(size_t incoming) {
  const absl::Time now = clock_->Now();
  while (!order_.empty()) {
    const Entry& oldest = entries_.at(order_.front());
    const bool expired = now >= oldest.response->created + options_.ttl;
    const bool over =
        entries_.size() + 1 > options_.max_entries || bytes_ + incoming > options_.max_bytes;
    if (!expired && !over) break;
    const std::string id = order_.front();  // EraseLocked erases the list node
    EraseLocked(id);
  }
}

void InProcessConversationStore::EraseLocked(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace lmgate::conversations
