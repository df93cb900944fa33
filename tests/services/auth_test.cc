// The auth matrix over loopback: denied calls get UNAUTHENTICATED / PERMISSION_DENIED /
// RESOURCE_EXHAUSTED and nothing reaches the driver.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
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
constexpr char kLlmOpsKey[] = "llmops-key-0123456789abcdef";  // admin of fake/llm-* only

class AuthTest : public ::testing::Test {
 protected:
  // False (with a test failure) if the server did not start.
  bool Start(std::vector<std::string> allow_cidrs = {}, const std::string& host = "127.0.0.1") {
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
    admission::KeyConfig llmops;
    llmops.tenant.name = "llmops";
    llmops.tenant.admin = true;
    llmops.tenant.models = {"fake/llm-*"};
    llmops.key_sha256 = admission::Identity::Sha256Hex(kLlmOpsKey);
    io.keys = {app, ops, tiny, llmops};
    io.allow_cidrs = std::move(allow_cidrs);
    auto identity = admission::Identity::Create(io);
    EXPECT_TRUE(identity.ok()) << identity.status();
    if (!identity.ok()) return false;

    auto fake = std::make_unique<FakeDriver>(FakeDriver::Options{});
    fake_ = fake.get();
    std::vector<std::unique_ptr<backends::Driver>> drivers;
    drivers.push_back(std::move(fake));
    ServerOptions opts;
    opts.listen = host + ":0";
    opts.drivers = std::make_shared<backends::DriverSet>(std::move(drivers));
    opts.gateway.default_model = "fake/llm-small";
    opts.identity = std::shared_ptr<const admission::Identity>(std::move(*identity));
    opts.worker_threads = 2;
    auto server = LmgateServer::Create(std::move(opts));
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return false;
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel(host + ":" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    inference_ = v1::Inference::NewStub(channel);
    models_ = v1::ModelManager::NewStub(channel);
    return true;
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // `retry_after` (if not null) gets the `retry-after-ms` trailer ("" if none).
  grpc::Status Chat(const std::string& key, const std::string& model = "",
                    bool x_api_key = false, std::string* retry_after = nullptr) {
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
    grpc::Status st = reader->Finish();
    if (retry_after != nullptr) *retry_after = Trailer(ctx, "retry-after-ms");
    return st;
  }

  static std::string Trailer(const grpc::ClientContext& ctx, const std::string& key) {
    auto it = ctx.GetServerTrailingMetadata().find(key);
    if (it == ctx.GetServerTrailingMetadata().end()) return "";
    return std::string(it->second.data(), it->second.size());
  }

  grpc::Status Load(const std::string& key, const std::string& model = "fake/llm-small",
                    const std::string& identifier = "") {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::LoadModelRequest req;
    req.set_model(model);
    if (!identifier.empty()) req.mutable_config()->set_identifier(identifier);
    auto reader = models_->LoadModel(&ctx, req);
    v1::LoadModelResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  }

  grpc::Status Tokenize(const std::string& key, const std::string& model) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::TokenizeRequest req;
    req.set_model(model);
    req.set_text("hi");
    v1::TokenizeResponse resp;
    return inference_->Tokenize(&ctx, req, &resp);
  }

  grpc::Status GetModel(const std::string& key, const std::string& model) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::GetModelRequest req;
    req.set_model(model);
    v1::Model resp;
    return models_->GetModel(&ctx, req, &resp);
  }

  grpc::Status Unload(const std::string& key, const std::string& model) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::UnloadModelRequest req;
    req.set_model(model);
    v1::UnloadModelResponse resp;
    return models_->UnloadModel(&ctx, req, &resp);
  }

  FakeDriver* fake_ = nullptr;
  std::unique_ptr<LmgateServer> server_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::ModelManager::Stub> models_;
};

TEST_F(AuthTest, DeniedCallsNeverReachTheHost) {
  ASSERT_TRUE(Start());
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
  ASSERT_TRUE(Start());
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
  ASSERT_TRUE(Start({"10.0.0.0/8"}));
  grpc::Status st = Chat(kOpsKey);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("allowlist"), std::string::npos) << st.error_message();
  EXPECT_EQ(fake_->predictions_started(), 0);
}

// Issue 13 item 10: an instance identifier says nothing about the model behind it. An embedding
// model loaded as "fake/llm-alias" is not usable by a fake/llm-* key (it was, before the fix).
TEST_F(AuthTest, AllowlistsCheckTheModelBehindAnInstanceIdentifier) {
  ASSERT_TRUE(Start());
  ASSERT_TRUE(Load(kOpsKey, "fake/embed", "fake/llm-alias").ok());
  for (grpc::Status st : {Chat(kAppKey, "fake/llm-alias"), Tokenize(kAppKey, "fake/llm-alias"),
                          GetModel(kAppKey, "fake/llm-alias"), Unload(kLlmOpsKey, "fake/llm-alias")}) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_NE(st.error_message().find("may not use model fake/embed"), std::string::npos)
        << st.error_message();
  }
  EXPECT_EQ(fake_->predictions_started(), 0);
  EXPECT_EQ(fake_->unloads(), 0);
  // The tenant's own models still work, and an unknown name does not list the others.
  EXPECT_TRUE(GetModel(kAppKey, "fake/llm-small").ok());
  grpc::Status missing = GetModel(kAppKey, "fake/llm-none");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_message().find("fake/embed"), std::string::npos) << missing.error_message();
  EXPECT_TRUE(Unload(kOpsKey, "fake/llm-alias").ok());
}

// A restricted admin names new instances only inside its allowlist (PERMISSION_DENIED), and no
// one may name an instance after another model (INVALID_ARGUMENT).
TEST_F(AuthTest, LoadModelIdentifierIsAuthorizedToo) {
  ASSERT_TRUE(Start());
  grpc::Status st = Load(kLlmOpsKey, "fake/llm-small", "my-alias");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_NE(st.error_message().find("config.identifier"), std::string::npos) << st.error_message();
  st = Load(kLlmOpsKey, "fake/embed", "fake/llm-embed");  // the model itself is not allowed
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  st = Load(kOpsKey, "fake/llm-small", "fake/embed");  // another model's key
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("already names model fake/embed"), std::string::npos)
      << st.error_message();
  EXPECT_EQ(fake_->loads_started(), 0);
  EXPECT_TRUE(Load(kLlmOpsKey, "fake/llm-small", "fake/llm-mine").ok());
  st = Load(kOpsKey, "fake/llm-large", "fake/llm-mine");  // an instance of another model
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(fake_->loads_started(), 1);
}

// Issue 13 item 13: a name or identifier starting with '-' is INVALID_ARGUMENT at the API (the
// cli driver passes them to `lms`, which reads `-v` anywhere as --version).
TEST_F(AuthTest, NamesThatLookLikeOptionsAreInvalid) {
  ASSERT_TRUE(Start());
  grpc::Status st = Load(kOpsKey, "fake/llm-small", "-v");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("config.identifier"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("'-'"), std::string::npos) << st.error_message();
  EXPECT_EQ(Unload(kOpsKey, "-v").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Chat(kOpsKey, "--version").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(fake_->loads_started(), 0);
  EXPECT_EQ(fake_->unloads(), 0);
}

// Issue 13 item 12: WatchModels streams a restricted tenant only its models' events.
TEST_F(AuthTest, WatchModelsShowsOnlyTheTenantsModels) {
  ASSERT_TRUE(Start());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + std::string(kAppKey));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::WatchModelsRequest req;
  req.set_include_snapshot(true);
  auto reader = models_->WatchModels(&ctx, req);
  std::vector<v1::ModelEvent> seen;
  v1::ModelEvent e;
  for (int i = 0; i < 2 && reader->Read(&e); ++i) seen.push_back(e);  // the two fake/llm-*
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_TRUE(Load(kOpsKey, "fake/embed").ok());
  ASSERT_TRUE(Load(kOpsKey, "fake/llm-large").ok());
  // Events are published in order: once fake/llm-large is loaded, fake/embed's were sent.
  while (reader->Read(&e)) {
    seen.push_back(e);
    if (e.model_key() == "fake/llm-large" && e.kind() == v1::ModelEvent::KIND_LOADED) break;
  }
  ctx.TryCancel();
  reader->Finish();
  ASSERT_EQ(seen.back().model_key(), "fake/llm-large");
  for (const auto& ev : seen) EXPECT_NE(ev.model_key(), "fake/embed") << ev.DebugString();
}

// Issue 13 item 11: an allowlist entry for ::1 admits an IPv6 loopback client (the peer string
// "ipv6:%5B::1%5D:port" used to be cut to "" and denied).
TEST_F(AuthTest, Ipv6ClientInTheAllowlistIsAdmitted) {
  {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    if (fd >= 0) close(fd);
    if (!ok) GTEST_SKIP() << "this machine has no IPv6 loopback (cannot bind [::1]:0)";
  }
  ASSERT_TRUE(Start({"::1/128"}, "[::1]"));
  grpc::Status st = Chat(kOpsKey);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(fake_->predictions_started(), 1);
}

// ... and an IPv4-mapped entry admits the IPv4 client it names.
TEST_F(AuthTest, Ipv4MappedEntryAdmitsTheIpv4Client) {
  ASSERT_TRUE(Start({"::ffff:127.0.0.1"}));
  grpc::Status st = Chat(kOpsKey);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AuthTest, RequestsPerMinuteLimit) {
  ASSERT_TRUE(Start());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Chat(kTinyKey).ok()) << i;
  std::string retry_after;
  grpc::Status st = Chat(kTinyKey, "", false, &retry_after);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("retry in"), std::string::npos) << st.error_message();
  EXPECT_EQ(fake_->predictions_started(), 3);
  // The promised trailer (inference.proto, CONFIG.md): the bucket's refill time for one request,
  // 3/minute = one per 20 s, so at most 20000 ms.
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(retry_after, &ms)) << "retry-after-ms: '" << retry_after << "'";
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, 20000);

  // A unary call refused by the same quota carries it too.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kTinyKey);
  v1::EmbedRequest req;
  req.set_model("fake/llm-small");
  req.add_inputs("hi");
  v1::EmbedResponse resp;
  st = inference_->Embed(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(absl::SimpleAtoi(Trailer(ctx, "retry-after-ms"), &ms))
      << "retry-after-ms: '" << Trailer(ctx, "retry-after-ms") << "'";
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
