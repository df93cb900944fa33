// PredictionStream: turns the messages of one `predict` / `completeRawText` channel into
// lmgate's GenerateEvents and the final GenerateResult (§1.5 tool events, §1.4 fragments/stats).
//
// Pure state machine, no I/O. Not thread-safe: one instance per prediction, fed in order.
//
// Mapping:
// - fragment, reasoningType "none" → kContent; "reasoning" → kReasoning; the reasoning start/end
//   tag fragments (e.g. "<think>") are dropped from both the events and the result.
// - promptProcessingProgress → kPromptProgress.
// - toolCallGenerationStart/NameReceived/ArgumentFragmentGenerated/End → kToolCallDelta with a
//   0-based tool_index; the first delta of a tool carries its id and name. When the host sends
//   no argument fragments, End's full arguments go out as one delta, so the deltas of every
//   tool always concatenate to its final arguments. Tools without an id get `id_prefix` + index.
//   toolCallGenerationFailed drops that tool from the result.
// - success → GenerateStats (upstream_timings = true) and done().
#ifndef LMGATE_BACKENDS_SDK_WS_PREDICTION_H_
#define LMGATE_BACKENDS_SDK_WS_PREDICTION_H_

#include <string>
#include <vector>

#include "backends/sdk_ws/protocol.h"
#include "backends/types.h"

namespace lmgate::backends::sdk_ws {

GenerateStats DecodePredictionStats(const Json& stats);

class PredictionStream {
 public:
  explicit PredictionStream(std::string id_prefix = "call_") : id_prefix_(std::move(id_prefix)) {}

  // Consumes one channel message, appending the events it produces to `events`. Messages after
  // done() and unknown message types are ignored.
  void Consume(const Json& message, std::vector<GenerateEvent>* events);
  // True once `success` arrived.
  bool done() const { return done_; }
  // The accumulated result; call once, after done().
  GenerateResult TakeResult() { return std::move(result_); }

 private:
  struct OpenTool {
    int index = 0;
    std::string id;
    std::string name;
    bool announced = false;   // the id/name delta went out
    bool streamed_args = false;
  };
  OpenTool& StartTool(std::string id);
  GenerateEvent Delta(OpenTool& tool, std::string text);

  std::string id_prefix_;
  bool done_ = false;
  bool tool_open_ = false;
  OpenTool tool_;
  int next_tool_index_ = 0;
  GenerateResult result_;
};

}  // namespace lmgate::backends::sdk_ws

#endif  // LMGATE_BACKENDS_SDK_WS_PREDICTION_H_
