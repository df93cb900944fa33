// ChatTarget: one way of running a chat for the benchmark — through lmgate (async gRPC, callback
// API, so one process keeps thousands of calls open without a thread each) or directly against
// the LM Studio host with lmgate's own driver library (sdk_ws: the SDK WebSocket; openai: libcurl
// multi + SSE on /v1). Direct calls use the very client code lmgate uses upstream, so
// "lmgate − direct" is what the gateway adds: the gRPC hop, admission, lifecycle and conversion.
//
// Thread-safety: Start() may be called from any thread; callbacks run on gRPC / driver threads,
// must not block, and on_done runs exactly once per call, last.
#ifndef LMGATE_TESTS_BENCH_CHAT_TARGET_H_
#define LMGATE_TESTS_BENCH_CHAT_TARGET_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lmgate/v1/inference.grpc.pb.h"

namespace lmgate::bench {

struct ChatSpec {
  // false: lmgate sends only the final result (no_deltas + quiet); direct calls ignore deltas.
  bool stream = true;
  std::optional<int> max_tokens;
  absl::Duration timeout = absl::Seconds(30);
};

struct ChatCallbacks {
  std::function<void(absl::Time)> on_first_token;  // first content delta (streamed calls)
  std::function<void(const absl::Status&, int completion_tokens, absl::Time)> on_done;
};

// Handle of a running call. Dropping it does not cancel the call.
class ChatCall {
 public:
  virtual ~ChatCall() = default;
  virtual void Cancel() = 0;  // idempotent; on_done follows (CANCELLED unless it already ended)
};

class ChatTarget {
 public:
  virtual ~ChatTarget() = default;
  virtual const std::string& name() const = 0;
  virtual std::unique_ptr<ChatCall> Start(const ChatSpec& spec, ChatCallbacks callbacks) = 0;
};

// `channels` round-robin; `driver` is the request's driver field.
std::unique_ptr<ChatTarget> MakeGrpcTarget(std::vector<std::shared_ptr<grpc::Channel>> channels,
                                           v1::Driver driver, std::string model);
// N channels to `addr` that do not share a TCP connection.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& addr, int n);

// A driver from lmgate's registry ("sdk_ws", "openai", "rest") talking straight to `base_url`.
absl::StatusOr<std::unique_ptr<ChatTarget>> MakeDirectTarget(const std::string& driver,
                                                             const std::string& base_url,
                                                             std::string model);

}  // namespace lmgate::bench

#endif  // LMGATE_TESTS_BENCH_CHAT_TARGET_H_
