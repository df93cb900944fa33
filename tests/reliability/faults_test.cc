// lmgate under the emulator's faults: every call ends (deadlines on all of them) with a full
// result or a clear status, no upstream prediction is left running, and every driver serves
// again afterwards (the SDK socket reconnects).
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/reliability/fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate::reliability {
namespace {

using FaultsTest = LmgateFixture;
// Every deadline, bound and wait below is stretched by LMGATE_TEST_TIME_SCALE (sanitizer runs).
using testutil::Scaled;

TEST_F(FaultsTest, HostRestartedMidStreamEndsStreamsClearlyAndEveryDriverComesBack) {
  ExpectEveryDriverServes();  // model loaded, sockets open
  const int ws_before = Stat("ws_connections_total");
  SetTokens(/*tokens_per_second=*/40, /*response_tokens=*/2000);
  std::vector<std::thread> streams;
  std::vector<ChatOutcome> outcomes(3 * 4);
  std::atomic<int> started{0};
  for (int i = 0; i < static_cast<int>(outcomes.size()); ++i) {
    streams.emplace_back([&, i] {
      outcomes[i] = Chat(ChatRequest(kDrivers[i % 3], std::nullopt), Scaled(absl::Seconds(20)),
                         [&] { ++started; });
    });
  }
  const absl::Time until = absl::Now() + Scaled(absl::Seconds(10));
  while (started.load() < static_cast<int>(outcomes.size()) && absl::Now() < until) {
    absl::SleepFor(Scaled(absl::Milliseconds(5)));
  }
  EXPECT_EQ(started.load(), static_cast<int>(outcomes.size()));
  emu_->RefuseConnections(/*ms=*/600, /*drop_existing_connections=*/true);
  for (auto& t : streams) t.join();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << v1::Driver_Name(kDrivers[i % 3]) << ": " << o.status.error_message();
    EXPECT_TRUE(IsClearFailure(o.status)) << v1::Driver_Name(kDrivers[i % 3]);
    EXPECT_LT(o.took, Scaled(absl::Seconds(15))) << v1::Driver_Name(kDrivers[i % 3]);
  }
  EXPECT_TRUE(Quiescent()) << "a prediction kept running upstream";
  SetTokens(0, 16);
  ExpectEveryDriverServes();
  EXPECT_GT(Stat("ws_connections_total"), ws_before) << "the SDK socket was not reopened";
}

TEST_F(FaultsTest, CallsWhileTheHostRefusesConnectionsFailFastThenSucceed) {
  ExpectEveryDriverServes();
  emu_->RefuseConnections(/*ms=*/1500, /*drop_existing_connections=*/true);
  absl::SleepFor(Scaled(absl::Milliseconds(50)));
  for (v1::Driver d : kDrivers) {
    ChatOutcome o = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
    // A retry may land after the listener is back; otherwise the host is unreachable.
    if (!o.status.ok()) {
      EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << v1::Driver_Name(d) << ": " << o.status.error_message();
      EXPECT_TRUE(IsClearFailure(o.status));
    }
    EXPECT_LT(o.took, Scaled(absl::Seconds(8))) << v1::Driver_Name(d) << " waited instead of failing";
  }
  ExpectEveryDriverServes(absl::Seconds(15));
  EXPECT_TRUE(Quiescent());
}

TEST_F(FaultsTest, ConnectionDroppedMidStreamOnEveryDriverIsUnavailableThenRecovers) {
  ExpectEveryDriverServes();
  SetTokens(0, 200);
  for (v1::Driver d : kDrivers) {
    emu_->DropAfterFragments(3);
    ChatOutcome o = Chat(ChatRequest(d, std::nullopt), Scaled(absl::Seconds(10)));
    EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << v1::Driver_Name(d) << ": " << o.status.error_message();
    EXPECT_TRUE(IsClearFailure(o.status));
    EXPECT_TRUE(Quiescent()) << v1::Driver_Name(d);
    ChatOutcome again = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
    EXPECT_TRUE(again.status.ok()) << v1::Driver_Name(d) << ": " << again.status.error_message();
  }
}

TEST_F(FaultsTest, HttpErrorBurstsEndWithClearStatusesAndDoNotStick) {
  ExpectEveryDriverServes();
  for (int http : {500, 502, 503, 429}) {
    for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
      emu_->FailNextHttpRequests(3, http);
      for (int i = 0; i < 4; ++i) {
        ChatOutcome o = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
        if (o.status.ok()) {
          EXPECT_TRUE(o.got_result);
          EXPECT_EQ(o.joined, o.result.content());
        } else {
          EXPECT_TRUE(IsClearFailure(o.status)) << "HTTP " << http << " via " << v1::Driver_Name(d);
          if (http == 429) {
            EXPECT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
                << o.status.error_message();
          } else {
            EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
                << "HTTP " << http << ": " << o.status.error_message();
          }
        }
      }
      emu_->FailNextHttpRequests(0);
      ChatOutcome ok = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
      EXPECT_TRUE(ok.status.ok()) << "after HTTP " << http << " via " << v1::Driver_Name(d)
                                  << ": " << ok.status.error_message();
    }
  }
  EXPECT_TRUE(Quiescent());
}

TEST_F(FaultsTest, StalledStreamHitsTheDeadlineAndTheUpstreamPredictionStops) {
  ExpectEveryDriverServes();
  SetTokens(0, 200);
  for (v1::Driver d : kDrivers) {
    emu_->StallNextPrediction(/*after_fragments=*/2, /*stall_ms=*/-1);
    ChatOutcome o = Chat(ChatRequest(d, std::nullopt), Scaled(absl::Milliseconds(400)));
    EXPECT_EQ(o.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << v1::Driver_Name(d) << ": " << o.status.error_message();
    EXPECT_LT(o.took, Scaled(absl::Seconds(3))) << v1::Driver_Name(d);
    EXPECT_TRUE(Quiescent()) << v1::Driver_Name(d) << ": stalled prediction left running";
  }
  // A stall shorter than the deadline is only a pause: the answer is whole.
  for (v1::Driver d : kDrivers) {
    emu_->StallNextPrediction(2, 200);
    ChatOutcome o = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
    EXPECT_TRUE(o.status.ok()) << v1::Driver_Name(d) << ": " << o.status.error_message();
    EXPECT_EQ(o.joined, o.result.content());
    EXPECT_EQ(o.result.stats().completion_tokens(), 12) << v1::Driver_Name(d);
  }
}

TEST_F(FaultsTest, SlowLoadPastTheDeadlineThenTheModelServes) {
  emu_->SetLoadTimeMultiplier(100);  // qwen3-4b: ~5 s
  for (v1::Driver d : kDrivers) {
    // Not scaled: the three deadlines together must stay well inside the one shared load.
    ChatOutcome o = Chat(ChatRequest(d), absl::Milliseconds(300));
    EXPECT_EQ(o.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << v1::Driver_Name(d) << ": " << o.status.error_message();
    EXPECT_LT(o.took, Scaled(absl::Seconds(3)));
  }
  emu_->SetLoadTimeMultiplier(1);
  ExpectEveryDriverServes(absl::Seconds(20));
  EXPECT_LE(Stat("loads_finished"), 2) << "one shared load (maybe one retry), not one per call";
  EXPECT_TRUE(Quiescent());
}

TEST_F(FaultsTest, FailedLoadIsAClearStatusAndTheNextCallLoads) {
  emu_->FailNextLoads(1);
  ChatOutcome o = Chat(ChatRequest(v1::DRIVER_AUTO), Scaled(absl::Seconds(10)));
  if (!o.status.ok()) {
    EXPECT_TRUE(IsClearFailure(o.status)) << o.status.error_message();
  }
  ExpectEveryDriverServes();
}

TEST_F(FaultsTest, JitWindowAfterALoadDoesNotLeakHttp404ToCallers) {
  emu_->SetJitWindow(/*window_ms=*/300, /*status=*/404);
  for (v1::Driver d : {v1::DRIVER_REST, v1::DRIVER_OPENAI}) {
    // Unload so lmgate loads again right before the HTTP prediction.
    grpc::ClientContext uctx;
    uctx.set_deadline(absl::ToChronoTime(absl::Now() + Scaled(absl::Seconds(10))));
    v1::UnloadModelRequest ureq;
    ureq.set_model(kModel);
    ureq.set_all_instances(true);
    v1::UnloadModelResponse ur;
    models_->UnloadModel(&uctx, ureq, &ur);
    ChatOutcome o = Chat(ChatRequest(d), Scaled(absl::Seconds(10)));
    if (o.status.ok()) {
      EXPECT_EQ(o.joined, o.result.content());
    } else {
      EXPECT_TRUE(IsClearFailure(o.status)) << v1::Driver_Name(d);
      EXPECT_NE(o.status.error_code(), grpc::StatusCode::NOT_FOUND)
          << v1::Driver_Name(d) << ": the model exists; the host's JIT window leaked as "
          << o.status.error_message();
    }
  }
  emu_->SetJitWindow(0);
  ExpectEveryDriverServes();
  EXPECT_TRUE(Quiescent());
}

TEST_F(FaultsTest, ManyStreamsCancelledOrDroppedLeaveNothingRunning) {
  ExpectEveryDriverServes();
  SetTokens(100, 3000);
  std::vector<std::thread> threads;
  std::atomic<int> clear{0}, unclear{0};
  for (int i = 0; i < 30; ++i) {
    threads.emplace_back([&, i] {
      // A third are abandoned by a short deadline; the rest end when the host drops them.
      ChatOutcome o = Chat(ChatRequest(kDrivers[i % 3], std::nullopt),
                           i % 3 == 0 ? Scaled(absl::Milliseconds(300)) : Scaled(absl::Seconds(20)));
      (IsClearFailure(o.status) ? clear : unclear)++;
    });
  }
  absl::SleepFor(Scaled(absl::Milliseconds(800)));
  emu_->RefuseConnections(200, /*drop_existing_connections=*/true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(unclear.load(), 0);
  EXPECT_EQ(clear.load(), 30);
  EXPECT_TRUE(Quiescent());
  SetTokens(0, 16);
  ExpectEveryDriverServes();
}

}  // namespace
}  // namespace lmgate::reliability
