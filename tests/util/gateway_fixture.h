// GatewayFixture: lmgate in-process (real sdk_ws/rest/openai drivers, lifecycle, admission) over
// the LM Studio emulator, with a gRPC client — the setup of the integration and reliability
// tests. Every client call has a deadline, so a hung stream fails the test instead of hanging it.
#ifndef LMGATE_TESTS_UTIL_GATEWAY_FIXTURE_H_
#define LMGATE_TESTS_UTIL_GATEWAY_FIXTURE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "backends/registry.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/server.h"
#include "tests/emulator/emulator.h"

namespace lmgate::testutil {

inline constexpr char kModel[] = "qwen/qwen3-4b";
inline constexpr v1::Driver kDrivers[] = {v1::DRIVER_SDK, v1::DRIVER_REST, v1::DRIVER_OPENAI};

struct ChatOutcome {
  grpc::Status status;
  v1::InferenceResult result;
  std::string joined;  // content deltas
  bool got_result = false;
  absl::Duration took;
};

class GatewayFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Called by SetUp with the defaults (emulator at zero think time; sdk_ws, rest and openai
  // drivers; lmgate on 127.0.0.1:0 with 8 worker threads) before anything starts.
  virtual void Configure(emulator::Options& emulator, backends::HostConfig& host,
                         services::ServerOptions& server) {}

  static v1::ChatRequest ChatRequest(v1::Driver driver, std::optional<int> max_tokens = 12);
  // Runs a chat to its end under `deadline`; `on_first_delta` runs (on this thread) when the
  // first content delta arrives.
  ChatOutcome Chat(const v1::ChatRequest& req, absl::Duration deadline,
                   const std::function<void()>& on_first_delta = nullptr);

  int Stat(const char* name) { return emu_->Stats()[name].get<int>(); }
  // predictions_active back to 0 within `timeout`.
  bool Quiescent(absl::Duration timeout = absl::Seconds(5));
  // Every driver serves a full chat again within `within` (attempts retried).
  void ExpectEveryDriverServes(absl::Duration within = absl::Seconds(10));
  void SetTokens(double tokens_per_second, int response_tokens);

  std::unique_ptr<emulator::Emulator> emu_;
  std::unique_ptr<services::LmgateServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::ModelManager::Stub> models_;
};

// A status a caller can act on: a documented code with a message (never UNKNOWN, never
// INTERNAL, never OK without a result).
::testing::AssertionResult IsClearFailure(const grpc::Status& st);

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_UTIL_GATEWAY_FIXTURE_H_
