// ModelManager.UpdateModelPolicy through the gRPC API against the emulator: set and read back,
// reflected in GetModel/ListModels, kept across a reload, a pin loads, a new TTL expires idle
// instances from now, admin only, bad input named. And issue 18 bug 6: a second lmgate on the
// same host applies its TTL policy to the instances the first one loaded.
#include <chrono>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "backends/builtin.h"
#include "backends/registry.h"
#include "backends/selector.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/admission/identity.h"
#include "tests/util/gateway_fixture.h"
#include "tests/util/time_scale.h"

namespace lmgate {
namespace {

using testutil::kModel;
constexpr char kOther[] = "google/gemma-3-1b";

class ModelPolicyTest : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options&, backends::HostConfig&, services::ServerOptions& so) override {
    admission::IdentityOptions io;
    admission::KeyConfig ops;
    ops.tenant.name = "ops";
    ops.tenant.admin = true;
    ops.key_sha256 = admission::Identity::Sha256Hex("ops-key");
    admission::KeyConfig app;
    app.tenant.name = "app";
    app.key_sha256 = admission::Identity::Sha256Hex("app-key");
    io.keys = {ops, app};
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();
    so.identity = *std::move(identity);
    // The file's policy: a reload replaces it, run-time changes stay on top.
    so.gateway.lifecycle.models[kModel].sampling.top_k = 20;
    so.gateway.lifecycle.tick = absl::Milliseconds(50);
  }

  static void Prepare(grpc::ClientContext* ctx, const std::string& key = "ops-key") {
    ctx->AddMetadata("x-api-key", key);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(testutil::Scaled(absl::Seconds(20))));
  }

  grpc::Status Update(const v1::UpdateModelPolicyRequest& req, v1::ModelPolicy* out,
                      const std::string& key = "ops-key") {
    grpc::ClientContext ctx;
    Prepare(&ctx, key);
    return models_->UpdateModelPolicy(&ctx, req, out);
  }

  v1::Model Get(const std::string& model) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::GetModelRequest req;
    req.set_model(model);
    v1::Model m;
    grpc::Status st = models_->GetModel(&ctx, req, &m);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return m;
  }

  void Load(const std::string& model) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::LoadModelRequest req;
    req.set_model(model);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
};

// Reads a WatchModels stream until an event of `kind` for `model` (false at the deadline).
bool WaitForEvent(grpc::ClientReader<v1::ModelEvent>* reader, v1::ModelEvent::Kind kind,
                  const std::string& model) {
  v1::ModelEvent e;
  while (reader->Read(&e)) {
    if (e.kind() == kind && e.model_key() == model) return true;
  }
  return false;
}

TEST_F(ModelPolicyTest, SetReadBackAndShownOnInstances) {
  v1::UpdateModelPolicyRequest req;
  req.set_model(kModel);
  req.mutable_ttl()->set_seconds(600);
  req.mutable_sampling()->set_temperature(0.25);
  req.mutable_config()->set_context_length(2048);
  req.set_make_default(true);
  v1::ModelPolicy p;
  grpc::Status st = Update(req, &p);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(p.model_key(), kModel);
  EXPECT_EQ(p.ttl().seconds(), 600);
  EXPECT_DOUBLE_EQ(p.sampling().temperature(), 0.25);
  EXPECT_EQ(p.sampling().top_k(), 20);  // from the file, kept
  EXPECT_EQ(p.config().context_length(), 2048);
  EXPECT_TRUE(p.is_default());
  EXPECT_EQ(absl::StrJoin(p.overridden(), ","),
            "ttl,sampling.temperature,config.context_length,default_model");

  // An empty update reads the policy back.
  v1::UpdateModelPolicyRequest read;
  read.set_model(kModel);
  v1::ModelPolicy again;
  ASSERT_TRUE(Update(read, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), p.SerializeAsString());

  // The next load uses the policy's settings; its instance shows the TTL.
  Load(kModel);
  v1::Model m = Get(kModel);
  ASSERT_EQ(m.instances_size(), 1);
  EXPECT_EQ(m.instances(0).ttl().seconds(), 600);
  EXPECT_EQ(m.instances(0).context_length(), 2048);
  EXPECT_FALSE(m.instances(0).keep_loaded());

  // A pin and a new TTL apply to the loaded instance at once (ListModels too).
  v1::UpdateModelPolicyRequest pin;
  pin.set_model(kModel);
  pin.set_keep_loaded(true);
  pin.mutable_ttl()->set_seconds(0);  // never expire
  ASSERT_TRUE(Update(pin, &p).ok());
  EXPECT_TRUE(p.keep_loaded());
  EXPECT_FALSE(p.has_ttl());
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ListModelsRequest list;
  list.set_loaded_only(true);
  v1::ListModelsResponse models;
  ASSERT_TRUE(models_->ListModels(&ctx, list, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  ASSERT_EQ(models.models(0).instances_size(), 1);
  EXPECT_TRUE(models.models(0).instances(0).keep_loaded());
  EXPECT_FALSE(models.models(0).instances(0).has_ttl());
}

TEST_F(ModelPolicyTest, DefaultModelChangesAtRunTime) {
  v1::UpdateModelPolicyRequest req;
  req.set_model(kOther);
  req.set_make_default(true);
  v1::ModelPolicy p;
  ASSERT_TRUE(Update(req, &p).ok());
  EXPECT_TRUE(p.is_default());
  // LoadModel without a model now loads the new default.
  Load("");
  EXPECT_EQ(Get(kOther).instances_size(), 1);
  EXPECT_EQ(Get(kModel).instances_size(), 0);
}

TEST_F(ModelPolicyTest, KeptAcrossReloadAndReported) {
  v1::UpdateModelPolicyRequest req;
  req.set_model(kModel);
  req.mutable_ttl()->set_seconds(300);
  v1::ModelPolicy p;
  ASSERT_TRUE(Update(req, &p).ok());
  // A reload whose file sets another TTL and sampling: the run-time TTL wins, the rest is the file's.
  std::map<std::string, lifecycle::ModelPolicy> file;
  file[kModel].ttl = absl::Seconds(30);
  file[kModel].sampling.top_k = 5;
  auto kept = server_->ReplacePolicies(file, kModel);
  EXPECT_EQ(absl::StrJoin(kept, ","), std::string(kModel) + ".ttl");
  v1::UpdateModelPolicyRequest read;
  read.set_model(kModel);
  ASSERT_TRUE(Update(read, &p).ok());
  EXPECT_EQ(p.ttl().seconds(), 300);
  EXPECT_EQ(p.sampling().top_k(), 5);
  // `reset` goes back to the file.
  read.set_reset(true);
  ASSERT_TRUE(Update(read, &p).ok());
  EXPECT_EQ(p.ttl().seconds(), 30);
  EXPECT_EQ(p.overridden_size(), 0);
}

TEST_F(ModelPolicyTest, PinLoadsTheModel) {
  grpc::ClientContext watch_ctx;
  Prepare(&watch_ctx);
  v1::WatchModelsRequest w;
  w.set_model(kOther);
  auto watch = models_->WatchModels(&watch_ctx, w);
  v1::UpdateModelPolicyRequest req;
  req.set_model(kOther);
  req.set_keep_loaded(true);
  v1::ModelPolicy p;
  ASSERT_TRUE(Update(req, &p).ok());
  ASSERT_TRUE(WaitForEvent(watch.get(), v1::ModelEvent::KIND_LOADED, kOther));
  v1::Model m = Get(kOther);
  ASSERT_EQ(m.instances_size(), 1);
  EXPECT_TRUE(m.instances(0).keep_loaded());
  watch_ctx.TryCancel();
}

TEST_F(ModelPolicyTest, NewTtlExpiresIdleInstance) {
  Load(kModel);
  ASSERT_FALSE(Get(kModel).instances(0).has_ttl());
  grpc::ClientContext watch_ctx;
  Prepare(&watch_ctx);
  v1::WatchModelsRequest w;
  w.set_model(kModel);
  auto watch = models_->WatchModels(&watch_ctx, w);
  v1::UpdateModelPolicyRequest req;
  req.set_model(kModel);
  req.mutable_ttl()->set_seconds(1);
  v1::ModelPolicy p;
  ASSERT_TRUE(Update(req, &p).ok());
  EXPECT_EQ(Get(kModel).instances(0).ttl().seconds(), 1);
  EXPECT_TRUE(WaitForEvent(watch.get(), v1::ModelEvent::KIND_EXPIRED, kModel));
  watch_ctx.TryCancel();
}

TEST_F(ModelPolicyTest, AdminOnlyAndBadInputNamed) {
  v1::UpdateModelPolicyRequest req;
  req.set_model(kModel);
  req.set_keep_loaded(true);
  v1::ModelPolicy p;
  EXPECT_EQ(Update(req, &p, "app-key").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  auto expect_invalid = [&](const v1::UpdateModelPolicyRequest& r, const std::string& field) {
    grpc::Status st = Update(r, &p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find(field), std::string::npos) << st.error_message();
  };
  v1::UpdateModelPolicyRequest bad = req;
  bad.mutable_ttl()->set_seconds(-5);
  expect_invalid(bad, "ttl");
  bad = req;
  bad.mutable_sampling()->set_temperature(7);
  expect_invalid(bad, "sampling.temperature");
  bad = req;
  bad.mutable_config()->set_parallel_slots(0);
  expect_invalid(bad, "config.parallel_slots");
  bad = req;
  bad.mutable_config()->set_identifier("x");
  expect_invalid(bad, "config.identifier");
  bad = req;
  bad.clear_model();
  expect_invalid(bad, "model");

  v1::UpdateModelPolicyRequest unknown;
  unknown.set_model("nobody/no-such-model");
  unknown.set_keep_loaded(true);
  grpc::Status st = Update(unknown, &p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
}

// Load events name the tenant that asked: LoadModel's caller, or the caller of a request that
// needed the model.
TEST_F(ModelPolicyTest, LoadEventsNameTheTenant) {
  grpc::ClientContext watch_ctx;
  Prepare(&watch_ctx);
  auto watch = models_->WatchModels(&watch_ctx, v1::WatchModelsRequest());
  Load(kModel);  // as ops
  v1::ModelEvent e;
  auto next = [&](v1::ModelEvent::Kind kind) {
    while (watch->Read(&e)) {
      if (e.kind() == kind) return true;
    }
    return false;
  };
  ASSERT_TRUE(next(v1::ModelEvent::KIND_LOAD_STARTED));
  EXPECT_EQ(e.tenant(), "ops");
  EXPECT_NE(e.reason().find("tenant ops"), std::string::npos) << e.reason();
  ASSERT_TRUE(next(v1::ModelEvent::KIND_LOADED));
  EXPECT_EQ(e.tenant(), "ops");
  EXPECT_EQ(e.model_key(), kModel);

  grpc::ClientContext ctx;
  Prepare(&ctx, "app-key");
  v1::TokenizeRequest tok;
  tok.set_model(kOther);
  tok.set_text("hello");
  v1::TokenizeResponse out;
  grpc::Status st = inference_->Tokenize(&ctx, tok, &out);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(next(v1::ModelEvent::KIND_LOADED));
  EXPECT_EQ(e.model_key(), kOther);
  EXPECT_EQ(e.tenant(), "app");
  watch_ctx.TryCancel();
}

// Issue 18 bug 6: a rollout. The first lmgate loads two models and stops; the second, on the same
// host, has a TTL policy for one and a pin for the other: the instances it finds at sync are
// under its policy, whoever loaded them (before the fix they were "external" forever: no TTL, no
// pin, a leak).
TEST_F(ModelPolicyTest, PoliciesApplyToInstancesFoundAtSync) {
  Load(kModel);
  Load(kOther);
  server_->Shutdown(absl::Seconds(2));
  server_.reset();

  backends::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterBuiltinBackends(registry).ok());
  backends::HostConfig host;
  host.base_url = emu_->http_url();
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  for (const char* name : {"sdk_ws", "rest", "openai"}) {
    auto d = registry.Create(name, host);
    ASSERT_TRUE(d.ok()) << d.status();
    drivers.push_back(*std::move(d));
  }
  services::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
  so.gateway.lifecycle.refresh_interval = absl::ZeroDuration();
  so.gateway.lifecycle.tick = absl::Milliseconds(50);
  so.gateway.lifecycle.models[kModel].ttl = testutil::Scaled(absl::Seconds(1));
  so.gateway.lifecycle.models[kOther].keep_loaded = true;
  auto second = services::LmgateServer::Create(std::move(so));
  ASSERT_TRUE(second.ok()) << second.status();
  server_ = *std::move(second);
  channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                 grpc::InsecureChannelCredentials());
  models_ = v1::ModelManager::NewStub(channel_);

  grpc::ClientContext watch_ctx;
  Prepare(&watch_ctx);
  v1::WatchModelsRequest w;
  w.set_model(kModel);
  auto watch = models_->WatchModels(&watch_ctx, w);
  v1::Model pinned = Get(kOther);
  ASSERT_EQ(pinned.instances_size(), 1);
  EXPECT_TRUE(pinned.instances(0).keep_loaded());
  v1::Model expiring = Get(kModel);
  ASSERT_EQ(expiring.instances_size(), 1);
  EXPECT_TRUE(expiring.instances(0).has_ttl());
  EXPECT_TRUE(WaitForEvent(watch.get(), v1::ModelEvent::KIND_EXPIRED, kModel))
      << "the instance the first lmgate loaded never expired under the second one's TTL";
  watch_ctx.TryCancel();
  EXPECT_EQ(Get(kModel).instances_size(), 0);
  EXPECT_EQ(Get(kOther).instances_size(), 1);
}

}  // namespace
}  // namespace lmgate
