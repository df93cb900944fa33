// Fuzz target: request validation and conversion (services/convert.h) from serialized requests,
// as the gRPC server receives them. The first byte picks the message type; the rest is the wire
// encoding. Anything that parses must convert or be rejected with INVALID_ARGUMENT — a request
// that reaches a driver has passed validation, so no other code is acceptable here.
#include <cstdint>
#include <cstdlib>

#include "lmgate/v1/inference.pb.h"
#include "lmgate/v1/model_manager.pb.h"
#include "services/convert.h"

namespace v1 = lmgate::v1;
namespace svc = lmgate::services;

namespace {

void Check(const absl::Status& st) {
  if (!st.ok() && st.code() != absl::StatusCode::kInvalidArgument) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const int n = static_cast<int>(size - 1);
  switch (data[0] % 5) {
    case 0: {
      v1::ChatRequest req;
      if (req.ParseFromArray(bytes, n)) Check(svc::ToGenerateCall(req).status());
      break;
    }
    case 1: {
      v1::CompleteRequest req;
      if (req.ParseFromArray(bytes, n)) Check(svc::ToGenerateCall(req).status());
      break;
    }
    case 2: {
      v1::EmbedRequest req;
      if (req.ParseFromArray(bytes, n)) Check(svc::ValidateEmbed(req));
      break;
    }
    case 3: {
      v1::TokenizeRequest req;
      if (req.ParseFromArray(bytes, n)) Check(svc::ValidateTokenize(req));
      break;
    }
    case 4: {
      v1::LoadModelRequest req;
      if (req.ParseFromArray(bytes, n)) Check(svc::ToLoadParams(req).status());
      break;
    }
  }
  return 0;
}
