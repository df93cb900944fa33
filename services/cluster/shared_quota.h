// Per-tenant quotas shared by every lmgate in front of one LM Studio host, kept in Redis (issue 14):
// the same limits as admission::QuotaTracker (requests/minute and tokens/minute as continuously
// refilled token buckets, concurrent streams), exact across gateways because each step is one Lua
// script that Redis runs atomically.
//
// Crash-safe: a concurrent-stream permit is a member of a sorted set scored by its expiry; the
// holder renews its permits (Renew, every permit_ttl/3 or so) and a dead gateway's permits lapse
// after permit_ttl. Nothing grows without bound: every key expires when its tenant is idle (the
// buckets are full again after a minute anyway).
//
// Time comes from Redis (TIME inside the script), so gateways with skewed clocks agree; tests pass
// their own `now` instead (a simulated clock, no sleeps).
//
// Keys: lmgate:{<ns>}:quota:<tenant> (hash: bucket levels and update times) and
// lmgate:{<ns>}:streams:<tenant> (sorted set of permit ids). <ns> names the LM Studio host, so
// gateways in front of different hosts never share a quota; the braces keep one tenant's keys in
// one Redis Cluster slot.
//
// Thread-safe (as thread-safe as the RedisClient; each call is one script run).
#ifndef LMGATE_SERVICES_CLUSTER_SHARED_QUOTA_H_
#define LMGATE_SERVICES_CLUSTER_SHARED_QUOTA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/cluster/redis.h"

namespace lmgate::cluster {

struct QuotaLimits {
  int64_t requests_per_minute = 0;  // 0 = unlimited
  int64_t tokens_per_minute = 0;
  int64_t concurrent_streams = 0;
};

struct SharedQuotaOptions {
  // A permit not renewed for this long is dropped (its gateway died).
  absl::Duration permit_ttl = absl::Seconds(30);
};

class SharedQuota {
 public:
  // `ns` names the LM Studio host (e.g. its URL); `client` must outlive this.
  SharedQuota(RedisClient* client, std::string ns, SharedQuotaOptions options = {});

  // Checks every limit and, when all allow, takes a request from the bucket and a stream permit
  // `permit_id` (unique per call; the caller makes it, e.g. gateway id + counter) in one atomic
  // step. RESOURCE_EXHAUSTED names the limit and sets `*retry_after`; Redis failures are
  // UNAVAILABLE (the caller applies cluster.on_redis_error).
  absl::Status Admit(const std::string& tenant, const QuotaLimits& limits,
                     const std::string& permit_id, absl::Duration* retry_after = nullptr,
                     std::optional<absl::Time> now = std::nullopt);
  // Extends the given permits of `tenant` by permit_ttl from now; returns how many still existed
  // (a permit that lapsed is not revived).
  absl::StatusOr<int64_t> Renew(const std::string& tenant, const std::vector<std::string>& permits,
                                std::optional<absl::Time> now = std::nullopt);
  // Like Renew, but the holder vouches that every permit in `permits` is still running: one that
  // Redis lost (a restart, or it lapsed while the holder could not reach Redis) is added again,
  // so the count is right once Redis answers. Returns how many had to be re-added.
  absl::StatusOr<int64_t> Hold(const std::string& tenant, const std::vector<std::string>& permits,
                               std::optional<absl::Time> now = std::nullopt);
  absl::Status Release(const std::string& tenant, const std::string& permit_id);
  // Charges `tokens` used by a finished request against the tokens/minute bucket.
  absl::Status Charge(const std::string& tenant, const QuotaLimits& limits, int64_t tokens,
                      std::optional<absl::Time> now = std::nullopt);
  // Live permits of `tenant` (lapsed ones dropped first).
  absl::StatusOr<int64_t> Streams(const std::string& tenant,
                                  std::optional<absl::Time> now = std::nullopt);

 private:
  std::string QuotaKey(const std::string& tenant) const;
  std::string StreamsKey(const std::string& tenant) const;

  RedisClient* const client_;
  const std::string ns_;
  const SharedQuotaOptions options_;
};

}  // namespace lmgate::cluster

#endif  // LMGATE_SERVICES_CLUSTER_SHARED_QUOTA_H_
