// The auth matrix over loopback: denied calls get UNAUTHENTICATED / PERMISSION_DENIED /
// RESOURCE_EXHAUSTED and nothing reaches the driver.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "backends/fake/fake_driver.h"
#include "backends/selector.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/admission/identity.h"
#include "services/server.h"

namespace lmgate::services {
namespace {

using backends::FakeDriver;

constexpr char kAppKey[] = "app-key-0123456789abcdef";
constexpr char kOpsKey[] = "ops-key-0123456789abcdef";
constexpr char kTinyKey[] = "tiny-key-0123456789abcdef";

class AuthTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> allow_cidrs = {}) {
    admission::IdentityOptions io;
    admission::KeyConfig app;
    app.tenant.name = "app";
    app.tenant.models = {"fake/llm-*"};
    app.key_sha256 = admission::Identity::Sha256Hex(kAppKey);
    admission::KeyConfig ops;
    ops.tenant.name = "ops";
    ops.tenant.admin = true;
    ops.key_sha256 = admission::Identity::Sha256Hex(kOpsKey);
    admission::KeyConfig tiny;
    tiny.tenant.name = "tiny";
    tiny.tenant.limits.requests_per_minute = 3;
    tiny.key_sha256 = admission::Identity::Sha256Hex(kTinyKey);
    io.keys = {app, ops, tiny};
    io.allow_cidrs = std::move(allow_cidrs);
    auto identity = admission::Identity::Create(io);
    ASSERT_TRUE(identity.ok()) << identity.status();

    auto fake = std::make_unique<FakeDriver>(FakeDriver::Options{});
    fake_ = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    ServerOptions opts;
    opts.listen = "127.0.0.1:0";
    opts.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
    opts.gateway.default_model = "fake/llm-small";
    opts.identity = std::shared_ptr<const admission::Identity>(std::move(*identity));
    opts.worker_threads = 2;
    auto server = LmgateServer::Create(std::move(opts));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    inference_ = v1::Inference::NewStub(channel);
    models_ = v1::ModelManager::NewStub(channel);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  grpc::Status Chat(const std::string& key, const std::string& model = "",
                    bool x_api_key = false) {
    grpc::ClientContext ctx;
    if (!key.empty()) {
      if (x_api_key) {
        ctx.AddMetadata("x-api-key", key);
      } else {
        ctx.AddMetadata("authorization", "Bearer " + key);
      }
    }
    v1::ChatRequest req;
    req.set_model(model);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content("hi");
    auto reader = inference_->Chat(&ctx, req);
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  grpc::Status Load(const std::string& key) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::LoadModelRequest req;
    req.set_model("fake/llm-small");
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  FakeDriver* fake_ = nullptr;
  std::unique_ptr<LmgateServer> server_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::ModelManager::Stub> models_;
};

TEST_F(AuthTest, DeniedCallsNeverReachTheHost) {
  Start();
  EXPECT_EQ(Chat("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Chat("not-a-key").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status st = Load(kAppKey);  // inference key on an admin RPC
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("admin"), std::string::npos) << st.error_message();
  st = Chat(kAppKey, "fake/embed");  // model outside the key's allowlist
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("fake/embed"), std::string::npos);
  EXPECT_EQ(fake_->predictions_started(), 0);
  EXPECT_EQ(fake_->loads_started(), 0);
}

TEST_F(AuthTest, AllowedCallsWork) {
  Start();
  EXPECT_TRUE(Chat(kAppKey).ok());
  EXPECT_TRUE(Chat(kAppKey, "fake/llm-large", /*x_api_key=*/true).ok());
  EXPECT_TRUE(Load(kOpsKey).ok());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + std::string(kAppKey));
  v1::ListModelsResponse resp;
  ASSERT_TRUE(models_->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
  EXPECT_EQ(resp.models_size(), 2);  // fake/embed is hidden from this key
}

TEST_F(AuthTest, AddressOutsideTheAllowlistIsDenied) {
  Start({"10.0.0.0/8"});
  grpc::Status st = Chat(kOpsKey);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("allowlist"), std::string::npos) << st.error_message();
  EXPECT_EQ(fake_->predictions_started(), 0);
}

TEST_F(AuthTest, RequestsPerMinuteLimit) {
  Start();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Chat(kTinyKey).ok()) << i;
  grpc::Status st = Chat(kTinyKey);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("retry in"), std::string::npos) << st.error_message();
  EXPECT_EQ(fake_->predictions_started(), 3);
}

}  // namespace
}  // namespace lmgate::services

namespace lmgate::services {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in("tests/services/testdata/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TLS with client certificates: a verified certificate's CN names the tenant (no key needed);
// a client without one falls back to API keys.
TEST(MtlsTest, ClientCertificateNamesTheTenant) {
  admission::IdentityOptions io;
  admission::KeyConfig cert_tenant;
  cert_tenant.tenant.name = "team-a";
  cert_tenant.client_cn = "team-a";
  io.keys = {cert_tenant};
  auto identity = admission::Identity::Create(io);
  ASSERT_TRUE(identity.ok()) << identity.status();
  TlsOptions tls;
  tls.cert_file = "tests/services/testdata/server.pem";
  tls.key_file = "tests/services/testdata/server.key";
  tls.client_ca_file = "tests/services/testdata/ca.pem";
  auto creds = MakeServerCredentials(tls);
  ASSERT_TRUE(creds.ok()) << creds.status();

  auto fake = std::make_unique<backends::FakeDriver>(backends::FakeDriver::Options{});
  std::vector<std::unique_ptr<backends::Driver>> drivers;
  drivers.push_back(std::move(fake));
  ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.credentials = *creds;
  opts.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
  opts.gateway.default_model = "fake/llm-small";
  opts.identity = std::shared_ptr<const admission::Identity>(std::move(*identity));
  opts.worker_threads = 2;
  auto server = LmgateServer::Create(std::move(opts));
  ASSERT_TRUE(server.ok()) << server.status();
  // An IP address (no DNS: c-ares leaks a few bytes at exit under LeakSanitizer) and the name
  // the server certificate is issued for.
  const std::string addr = "127.0.0.1:" + std::to_string((*server)->port());

  auto list = [&](bool with_cert) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadTestdata("ca.pem");
    if (with_cert) {
      ssl.pem_cert_chain = ReadTestdata("client.pem");
      ssl.pem_private_key = ReadTestdata("client.key");
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto stub = v1::ModelManager::NewStub(
        grpc::CreateCustomChannel(addr, grpc::SslCredentials(ssl), args));
    grpc::ClientContext ctx;
    v1::ListModelsResponse resp;
    return stub->ListModels(&ctx, v1::ListModelsRequest(), &resp);
  };
  grpc::Status with = list(true);
  EXPECT_TRUE(with.ok()) << with.error_message();
  EXPECT_EQ(list(false).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  (*server)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace lmgate::services
