// DriverSet::Candidates: the capability table, explicit drivers, and the requirements that
// narrow the choice (tools, structured output, a context overflow policy).
#include "backends/selector.h"

#include <memory>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/fake/fake_driver.h"

namespace lmgate::backends {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Capabilities as the real drivers declare them (only what selection looks at).
std::unique_ptr<Driver> Fake(DriverKind kind) {
  FakeDriver::Options o;
  o.kind = kind;
  Capabilities c;
  c.list_models = true;
  c.load = c.unload = kind != DriverKind::kOpenAi;
  c.chat = c.complete = c.structured_output = kind != DriverKind::kCli;
  c.tool_calls = kind != DriverKind::kCli;
  c.embed = kind != DriverKind::kCli;
  c.tokenize = c.context_overflow_policy = kind == DriverKind::kSdk;
  o.capabilities = c;
  return std::make_unique<FakeDriver>(o);
}

DriverSet Set(std::vector<DriverKind> kinds, bool prefer_configured_order = false) {
  std::vector<std::unique_ptr<Driver>> drivers;
  for (DriverKind k : kinds) drivers.push_back(Fake(k));
  return DriverSet(std::move(drivers), prefer_configured_order);
}

std::vector<DriverKind> Kinds(const absl::StatusOr<std::vector<Driver*>>& c) {
  std::vector<DriverKind> out;
  if (c.ok()) {
    for (Driver* d : *c) out.push_back(d->kind());
  }
  return out;
}

using K = DriverKind;

TEST(SelectorTest, AutoFollowsTheCapabilityTable) {
  DriverSet s = Set({K::kCli, K::kOpenAi, K::kRest, K::kSdk});
  EXPECT_THAT(Kinds(s.Candidates(K::kAuto, Operation::kChat)),
              ElementsAre(K::kSdk, K::kRest, K::kOpenAi));
  EXPECT_THAT(Kinds(s.Candidates(K::kAuto, Operation::kEmbed)),
              ElementsAre(K::kRest, K::kOpenAi, K::kSdk));
  EXPECT_THAT(Kinds(s.Candidates(K::kAuto, Operation::kLoad)),
              ElementsAre(K::kSdk, K::kRest, K::kCli));
  EXPECT_THAT(Kinds(s.Candidates(K::kAuto, Operation::kTokenize)), ElementsAre(K::kSdk));
}

TEST(SelectorTest, ConfiguredOrderWinsWhenPreferred) {
  DriverSet s = Set({K::kOpenAi, K::kRest, K::kSdk}, /*prefer_configured_order=*/true);
  EXPECT_THAT(Kinds(s.Candidates(K::kAuto, Operation::kChat)),
              ElementsAre(K::kOpenAi, K::kRest, K::kSdk));
}

TEST(SelectorTest, ExplicitDriverMustBeEnabledAndAble) {
  DriverSet s = Set({K::kRest, K::kCli});
  auto off = s.Candidates(K::kSdk, Operation::kChat);
  EXPECT_EQ(off.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(off.status().message(), HasSubstr("enabled: rest, cli"));
  auto unable = s.Candidates(K::kCli, Operation::kChat);
  EXPECT_EQ(unable.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(unable.status().message(), HasSubstr("drivers that can: rest"));
}

// The overflow policy has no field on the REST/OpenAI APIs: AUTO must route such a request to a
// driver that carries it, and an explicit driver that cannot must say so (it was dropped).
TEST(SelectorTest, ContextOverflowPolicyNeedsADriverThatCarriesIt) {
  Requirements overflow;
  overflow.context_overflow_policy = true;
  DriverSet preferred = Set({K::kRest, K::kOpenAi, K::kSdk}, /*prefer_configured_order=*/true);
  EXPECT_THAT(Kinds(preferred.Candidates(K::kAuto, Operation::kChat, overflow)),
              ElementsAre(K::kSdk));
  auto rest = preferred.Candidates(K::kRest, Operation::kChat, overflow);
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(rest.status().message(),
              HasSubstr("the rest driver cannot chat with a context overflow policy; drivers "
                        "that can: sdk_ws"));
  DriverSet http_only = Set({K::kRest, K::kOpenAi});
  auto none = http_only.Candidates(K::kAuto, Operation::kComplete, overflow);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr("context overflow policy"));
}

}  // namespace
}  // namespace lmgate::backends
