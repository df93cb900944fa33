// The model view stays true (issue 18): what lmgate reports about instances follows the host,
// and a generation the host cut short never ends OK.
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;

class ModelViewTest : public testutil::GatewayFixture {};

// Bug 3: an unload made at the host (not through lmgate) mid-stream ends the call UNAVAILABLE
// naming the cause, not OK with STOP_REASON_MODEL_UNLOADED and truncated text.
TEST_F(ModelViewTest, StreamCutByAnUnloadOutsideLmgateEndsUnavailable) {
  SetTokens(/*tokens_per_second=*/200, /*response_tokens=*/400);
  v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK, /*max_tokens=*/400);
  absl::Status unload;
  testutil::ChatOutcome o = Chat(req, testutil::Scaled(absl::Seconds(20)),
                                 [&] { unload = emu_->Unload(kModel); });
  ASSERT_TRUE(unload.ok()) << unload;
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << o.status.error_code() << " " << o.status.error_message()
      << " stop_reason=" << v1::StopReason_Name(o.result.stats().stop_reason());
  EXPECT_TRUE(absl::StrContains(o.status.error_message(), "unloaded outside lmgate"))
      << o.status.error_message();
  EXPECT_FALSE(o.got_result);
}

}  // namespace
}  // namespace lmgate
