// Fuzz target: the gRPC request path as a whole. The first byte picks the method (0 Chat,
// 1 Complete, 2 Embed, 3 Tokenize, 4 CountTokens, 5 LoadModel, 6 UnloadModel, 7 GetModel,
// 8 ListModels, 9 WatchModels); the rest is the serialized request. Each request goes
//   1. through validation and conversion (services/convert.h), and what passes through the
//      real drivers' request encoders (SDK frames, OpenAI/REST bodies, dumped as sent), and
//   2. as an RPC to an lmgate server in this process (loopback, port 0: the service shells,
//      admission, lifecycle and the Gateway core) over the in-memory FakeDriver.
// Invariants: no crash or sanitizer report; every RPC ends within its deadline with a status a
// caller can act on (never UNKNOWN, INTERNAL or DATA_LOSS, never a code without a message); what
// validation refuses the server refuses with INVALID_ARGUMENT too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/fake/fake_driver.h"
#include "backends/http/openai_wire.h"
#include "backends/rest/rest_wire.h"
#include "backends/sdk_ws/codec.h"
#include "backends/sdk_ws/protocol.h"
#include "lmgate/v1/inference.grpc.pb.h"
#include "lmgate/v1/model_manager.grpc.pb.h"
#include "services/convert.h"
#include "services/server.h"
#include "spdlog/spdlog.h"

namespace v1 = lmgate::v1;
namespace svc = lmgate::services;
namespace be = lmgate::backends;

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "request_path_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

// One lmgate for the whole run (starting one per input would dominate the time).
struct Lmgate {
  std::unique_ptr<svc::LmgateServer> server;
  std::unique_ptr<v1::Inference::Stub> inference;
  std::unique_ptr<v1::ModelManager::Stub> models;
};

Lmgate& Server() {
  static Lmgate* lmgate = [] {
    spdlog::set_level(spdlog::level::off);  // one access-log line per input would dominate
    std::vector<std::unique_ptr<be::Driver>> drivers;
    drivers.push_back(std::make_unique<be::FakeDriver>(be::FakeDriver::Options{}));
    svc::ServerOptions opts;
    opts.listen = "127.0.0.1:0";
    opts.drivers = std::make_shared<be::DriverSet>(std::move(drivers));
    opts.gateway.default_model = "fake/llm-small";
    opts.gateway.default_embedding_model = "fake/embed";
    opts.gateway.lifecycle.max_loaded_models = 3;  // new_instance loads evict, not pile up
    opts.worker_threads = 4;
    auto server = svc::LmgateServer::Create(std::move(opts));
    if (!server.ok()) Fail("cannot start lmgate", server.status().ToString());
    auto* l = new Lmgate;
    l->server = *std::move(server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(l->server->port()),
                                       grpc::InsecureChannelCredentials());
    l->inference = v1::Inference::NewStub(channel);
    l->models = v1::ModelManager::NewStub(channel);
    return l;
  }();
  return *lmgate;
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

// What an RPC ended with, against what validation said of the same request.
void CheckRpc(const char* method, const grpc::Status& st, const absl::Status& validation,
              bool may_time_out = false) {
  switch (st.error_code()) {
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
      Fail(method, "unclear status " + std::to_string(st.error_code()) + ": " + st.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (!may_time_out) Fail(method, "did not finish within its deadline (a stall)");
      break;
    case grpc::StatusCode::OK:
      break;
    default:
      if (st.error_message().empty()) {
        Fail(method, "status " + std::to_string(st.error_code()) + " without a message");
      }
  }
  if (!validation.ok() && st.error_code() != grpc::StatusCode::INVALID_ARGUMENT &&
      !(may_time_out && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    Fail(method, "validation refused (" + validation.ToString() + ") but the server answered " +
                     std::to_string(st.error_code()) + " " + st.error_message());
  }
}

void CheckValidation(const char* method, const absl::Status& st) {
  if (!st.ok() && st.code() != absl::StatusCode::kInvalidArgument) {
    Fail(method, "validation answered " + st.ToString());
  }
}

// The drivers' encoders must take anything validation let through without crashing; they may
// still refuse (a schema that is JSON but not an object).
void EncodeForDrivers(const be::GenerateRequest& request) {
  if (auto creation = be::sdk_ws::EncodePredictCreation(request); creation.ok()) {
    (void)be::sdk_ws::EncodeChannelCreate(1, be::sdk_ws::PredictEndpoint(request), *creation);
  }
  (void)be::http::BuildGenerateBody(request, /*stream=*/true);
}

const absl::Duration kDeadline = absl::Seconds(20);

template <typename Req>
bool Parse(const uint8_t* data, size_t size, Req* req) {
  return req->ParseFromArray(data, static_cast<int>(size));
}

template <typename Req>
void RunGenerate(const char* method, const Req& req,
                 std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> (v1::Inference::Stub::*rpc)(
                     grpc::ClientContext*, const Req&)) {
  auto call = svc::ToGenerateCall(req);
  CheckValidation(method, call.status());
  if (call.ok()) EncodeForDrivers(call->request);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kDeadline);
  auto reader = (Server().inference.get()->*rpc)(&ctx, req);
  v1::ChatResponse r;
  while (reader->Read(&r)) {
  }
  CheckRpc(method, reader->Finish(), call.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t* bytes = data + 1;
  const size_t n = size - 1;
  Lmgate& l = Server();
  switch (data[0] % 10) {
    case 0: {
      v1::ChatRequest req;
      if (Parse(bytes, n, &req)) RunGenerate("Chat", req, &v1::Inference::Stub::Chat);
      break;
    }
    case 1: {
      v1::CompleteRequest req;
      if (Parse(bytes, n, &req)) RunGenerate("Complete", req, &v1::Inference::Stub::Complete);
      break;
    }
    case 2: {
      v1::EmbedRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateEmbed(req);
      CheckValidation("Embed", v);
      if (v.ok()) {
        (void)be::http::BuildEmbeddingsBody(req.model(), {req.inputs().begin(), req.inputs().end()});
        for (const auto& in : req.inputs()) (void)be::sdk_ws::EncodeEmbedString(req.model(), in);
      }
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      v1::EmbedResponse resp;
      CheckRpc("Embed", l.inference->Embed(&ctx, req, &resp), v);
      break;
    }
    case 3:
    case 4: {
      v1::TokenizeRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateTokenize(req);
      CheckValidation("Tokenize", v);
      if (v.ok()) (void)be::sdk_ws::DumpJson(be::sdk_ws::EncodeTokenizerInput(req.model(), req.text()));
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      if (data[0] % 10 == 3) {
        v1::TokenizeResponse resp;
        CheckRpc("Tokenize", l.inference->Tokenize(&ctx, req, &resp), v);
      } else {
        v1::CountTokensResponse resp;
        CheckRpc("CountTokens", l.inference->CountTokens(&ctx, req, &resp), v);
      }
      break;
    }
    case 5: {
      v1::LoadModelRequest req;
      if (!Parse(bytes, n, &req)) break;
      auto params = svc::ToLoadParams(req);
      CheckValidation("LoadModel", params.status());
      if (params.ok()) {
        (void)be::sdk_ws::EncodeLoadModel(*params, be::ModelType::kLlm);
        (void)be::rest::BuildLoadBody(*params);
      }
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      auto reader = l.models->LoadModel(&ctx, req);
      v1::LoadModelResponse r;
      while (reader->Read(&r)) {
      }
      CheckRpc("LoadModel", reader->Finish(), params.status());
      break;
    }
    case 6: {
      v1::UnloadModelRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateUnload(req);
      CheckValidation("UnloadModel", v);
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      v1::UnloadModelResponse resp;
      CheckRpc("UnloadModel", l.models->UnloadModel(&ctx, req, &resp), v);
      break;
    }
    case 7: {
      v1::GetModelRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateModelName(req.model(), /*allow_empty=*/false);
      CheckValidation("GetModel", v);
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      v1::Model resp;
      CheckRpc("GetModel", l.models->GetModel(&ctx, req, &resp), v);
      break;
    }
    case 8: {
      v1::ListModelsRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateListModels(req);
      CheckValidation("ListModels", v);
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kDeadline);
      v1::ListModelsResponse resp;
      CheckRpc("ListModels", l.models->ListModels(&ctx, req, &resp), v);
      break;
    }
    case 9: {
      v1::WatchModelsRequest req;
      if (!Parse(bytes, n, &req)) break;
      const absl::Status v = svc::ValidateWatch(req);
      CheckValidation("WatchModels", v);
      // The stream stays open until cancelled: a short deadline ends it.
      grpc::ClientContext ctx;
      SetDeadline(&ctx, absl::Milliseconds(20));
      auto reader = l.models->WatchModels(&ctx, req);
      v1::ModelEvent e;
      while (reader->Read(&e)) {
      }
      CheckRpc("WatchModels", reader->Finish(), v, /*may_time_out=*/true);
      break;
    }
  }
  return 0;
}
