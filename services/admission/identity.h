// Identity and permissions: API keys → tenants with roles, allowed models, limits and a fair-share
// weight; plus an optional client-address allowlist.
//
// Keys are configured hashed (sha256 hex), or read from an environment variable or a file at
// start, and only their SHA-256 is kept in memory. Lookup compares digests in constant time.
// Thread-safe after Create() (immutable).
#ifndef LMGATE_SERVICES_ADMISSION_IDENTITY_H_
#define LMGATE_SERVICES_ADMISSION_IDENTITY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/admission/scheduler.h"

namespace lmgate::admission {

struct Limits {
  int requests_per_minute = 0;  // 0 = unlimited
  int64_t tokens_per_minute = 0;
  int concurrent_streams = 0;
};

struct Tenant {
  std::string name;
  bool inference = true;  // Chat/Complete/Embed/Tokenize/ListModels/GetModel/WatchModels
  bool admin = false;     // LoadModel/UnloadModel
  // Allowed model keys; a trailing '*' matches a prefix ("qwen/*"). Empty = every model.
  std::vector<std::string> models;
  Limits limits;
  double weight = 1;                         // fair-share weight in the admission queues
  Priority max_priority = Priority::kHigh;   // requests asking for more are capped to this

  bool AllowsModel(absl::string_view model) const;
  // PERMISSION_DENIED naming the tenant and `model_key` unless AllowsModel(model_key);
  // `requested` is the name the caller used (an instance identifier of that model, say).
  absl::Status CheckModel(absl::string_view model_key, absl::string_view requested = "") const;
};

struct KeyConfig {
  Tenant tenant;
  // Exactly one of these.
  std::string key_sha256;  // hex digest of the key
  std::string key_env;     // environment variable holding the key
  std::string key_file;    // file holding the key (trailing newline ignored)
  // mTLS: callers presenting a verified client certificate with this subject common name.
  std::string client_cn;
};

struct IdentityOptions {
  std::vector<KeyConfig> keys;
  // Client address allowlist, CIDR ("10.0.0.0/8", "::1/128") or single addresses. Empty = any.
  std::vector<std::string> allow_cidrs;
};

class Identity {
 public:
  // INVALID_ARGUMENT naming the bad key entry or CIDR; NOT_FOUND for a missing env var/file.
  static absl::StatusOr<std::unique_ptr<Identity>> Create(const IdentityOptions& options);

  // True when API keys are configured (otherwise every caller is the anonymous tenant).
  bool keys_enabled() const { return !tenants_.empty() || !by_cn_.empty(); }
  // The tenant a presented key belongs to: UNAUTHENTICATED when keys are enabled and the key is
  // missing or unknown; the anonymous tenant (all roles) when keys are disabled.
  absl::StatusOr<const Tenant*> Authenticate(absl::string_view presented_key) const;
  // The tenant of a verified client certificate's common name, or nullptr.
  const Tenant* FindByClientCn(absl::string_view cn) const;
  // PERMISSION_DENIED when `peer` (gRPC peer string "ipv4:1.2.3.4:567", "ipv6:%5B::1%5D:5", the
  // brackets percent-encoded as gRPC writes them) is not in the allowlist. IPv4 and IPv4-mapped
  // IPv6 (::ffff:a.b.c.d) are one address: an entry written either way matches both.
  absl::Status CheckPeer(absl::string_view peer) const;

  static std::string Sha256Hex(absl::string_view data);

  // Why `key` must not be used ("" = acceptable): shorter than kMinKeyLength, a placeholder
  // ("replace-me", "changeme", "example", ...) or fewer than kMinKeyDistinctChars distinct
  // characters. Create() refuses keys from key_env / key_file with this reason.
  static std::string KeyWeakness(absl::string_view key);
  static constexpr size_t kMinKeyLength = 16;
  static constexpr int kMinKeyDistinctChars = 8;

 private:
  // Always in IPv6 form: IPv4 entries as ::ffff:a.b.c.d with the prefix counted from bit 0.
  struct Cidr {
    uint8_t addr[16] = {};
    int prefix = 0;
  };
  Identity() = default;
  static absl::StatusOr<Cidr> ParseCidr(absl::string_view text);

  std::vector<std::pair<std::string, Tenant>> tenants_;  // (sha256 digest bytes, tenant)
  std::map<std::string, Tenant> by_cn_;                  // mTLS common name → tenant
  Tenant anonymous_;
  std::vector<Cidr> allow_;
};

// The Identity in force, replaceable at run time (a SIGHUP reload rotates keys, changes limits).
// Readers take a snapshot with Get() per call; a call keeps the snapshot (and the Tenant it
// authenticated as) it started with, so a stream running on a key a reload removed completes.
// Tenant pointers handed out stay valid for the holder's lifetime: replaced snapshots are
// retired, not destroyed (a reload costs one Identity, a few KB). Quota state lives elsewhere
// (QuotaTracker, keyed by tenant name), so a tenant that survives a reload keeps its buckets.
// Thread-safe.
class IdentityHolder {
 public:
  // `initial` may be null (no keys, no allowlist).
  explicit IdentityHolder(std::shared_ptr<const Identity> initial) : current_(std::move(initial)) {}
  std::shared_ptr<const Identity> Get() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }
  void Replace(std::shared_ptr<const Identity> next) {
    absl::MutexLock lock(&mu_);
    if (current_ != nullptr) retired_.push_back(std::move(current_));
    current_ = std::move(next);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Identity> current_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<const Identity>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::admission

#endif  // LMGATE_SERVICES_ADMISSION_IDENTITY_H_
