// ModelRegistry's host sync against a scripted host: what each listing means for the view.
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "services/lifecycle/events.h"
#include "services/lifecycle/registry.h"

namespace lmgate::lifecycle {
namespace {

using backends::CallContext;
using backends::DriverKind;

// A host whose listing is set by the test; loads succeed under the asked identifier.
class ScriptedHostOps : public HostOps {
 public:
  absl::StatusOr<backends::HostModels> List(const CallContext&) override {
    absl::MutexLock lock(&mu_);
    return listing_;
  }
  absl::StatusOr<backends::InstanceInfo> Load(const CallContext&, DriverKind,
                                              const backends::LoadParams& params,
                                              const backends::LoadProgressFn&,
                                              DriverKind*) override {
    backends::InstanceInfo i;
    i.model_key = params.model_key;
    i.identifier = params.identifier.empty() ? params.model_key : params.identifier;
    i.type = backends::ModelType::kLlm;
    return i;
  }
  absl::Status Unload(const CallContext&, DriverKind, const std::string&, DriverKind*) override {
    return absl::OkStatus();
  }
  void SetListing(backends::HostModels listing) {
    absl::MutexLock lock(&mu_);
    listing_ = std::move(listing);
  }

 private:
  absl::Mutex mu_;
  backends::HostModels listing_ ABSL_GUARDED_BY(mu_);
};

// Issue 18 bug 1, whatever the driver: a v0-only host lists the instance `primary` as a row of
// its own, with nothing saying whose it is. It stays the instance of its model key.
TEST(RegistryHostSyncTest, ARowNamedByACustomIdentifierIsThatInstance) {
  ScriptedHostOps host;
  EventBus bus;
  backends::HostModels before;
  before.downloaded.push_back(backends::ModelInfo{"qwen/qwen3-4b"});
  host.SetListing(before);
  RegistryOptions options;
  options.refresh_interval = absl::ZeroDuration();
  auto registry = ModelRegistry::Create(std::move(options), &host, &bus);
  ASSERT_TRUE(registry.ok()) << registry.status();
  CallContext ctx;
  ASSERT_TRUE((*registry)->Refresh(ctx).ok());
  backends::LoadParams params;
  params.model_key = "qwen/qwen3-4b";
  params.identifier = "primary";
  ASSERT_TRUE((*registry)->Load(ctx, DriverKind::kAuto, params, false, false, nullptr, nullptr).ok());

  backends::HostModels after;  // what ParseV0Models makes of the real host's rows
  after.downloaded.push_back(backends::ModelInfo{"qwen/qwen3-4b"});
  after.downloaded.push_back(backends::ModelInfo{"primary"});
  backends::InstanceInfo row;
  row.identifier = row.model_key = "primary";
  after.loaded.push_back(row);
  host.SetListing(after);
  ASSERT_TRUE((*registry)->Refresh(ctx).ok());

  for (const ModelSnapshot& m : (*registry)->Snapshot()) {
    EXPECT_NE(m.info.key, "primary") << "a bogus model for the instance's own row";
  }
  auto snap = (*registry)->Get("primary");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->info.key, "qwen/qwen3-4b");
  ASSERT_EQ(snap->instances.size(), 1u);
  EXPECT_EQ(snap->instances[0].info.identifier, "primary");
  EXPECT_EQ(snap->state, State::kReady);
}

}  // namespace
}  // namespace lmgate::lifecycle
