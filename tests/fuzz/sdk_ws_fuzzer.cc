// Fuzz target: the SDK WebSocket envelope and payload decoders (backends/sdk_ws/protocol.h,
// codec.h, prediction.h) — everything lmgate does with a frame the host sends. None may crash
// or throw; re-serialising what was parsed must not throw either (invalid UTF-8 is replaced).
#include <cstdint>

#include "absl/strings/string_view.h"
#include "backends/sdk_ws/codec.h"
#include "backends/sdk_ws/prediction.h"
#include "backends/sdk_ws/protocol.h"

namespace sdk = lmgate::backends::sdk_ws;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view frame(reinterpret_cast<const char*>(data), size);
  (void)sdk::DecodeAuthReply(frame);
  auto msg = sdk::DecodeServerMessage(frame);
  if (!msg.ok()) return 0;
  const sdk::Json& payload = msg->payload;
  (void)sdk::DumpJson(payload);
  (void)sdk::StatusFromSerializedError(payload);
  // A prediction channel fed the same message a few times (fragments, tool events, success).
  sdk::PredictionStream stream;
  std::vector<lmgate::backends::GenerateEvent> events;
  for (int i = 0; i < 3 && !stream.done(); ++i) stream.Consume(payload, &events);
  if (stream.done()) (void)stream.TakeResult();
  (void)sdk::DecodePredictionStats(payload);
  // Results of the unary endpoints.
  (void)sdk::DecodeModelList(payload);
  (void)sdk::DecodeInstanceList(payload);
  (void)sdk::DecodeModelInfo(payload);
  (void)sdk::DecodeInstanceInfo(payload);
  (void)sdk::DecodeLoadMessage(payload);
  (void)sdk::DecodeEmbedding(payload);
  (void)sdk::DecodeTokens(payload);
  (void)sdk::DecodeTokenCount(payload);
  return 0;
}
