#include "backends/sdk_ws/prediction.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::backends::sdk_ws {
namespace {

int ClampedInt(const Json& object, absl::string_view key) {
  std::optional<int64_t> v = IntMember(object, key);
  if (!v.has_value() || *v < 0) return 0;
  return static_cast<int>(std::min<int64_t>(*v, INT32_MAX));
}

}  // namespace

GenerateStats DecodePredictionStats(const Json& stats) {
  GenerateStats out;
  out.upstream_timings = true;
  out.stop_reason = ParseStopReason(StringMember(stats, "stopReason"));
  out.stop_string = StringMember(stats, "stopString");
  if (std::optional<double> ttft = NumberMember(stats, "timeToFirstTokenSec");
      ttft.has_value() && std::isfinite(*ttft) && *ttft >= 0) {
    out.time_to_first_token = absl::Seconds(*ttft);
  }
  if (std::optional<double> tps = NumberMember(stats, "tokensPerSecond");
      tps.has_value() && std::isfinite(*tps) && *tps >= 0) {
    out.tokens_per_second = *tps;
  }
  out.prompt_tokens = ClampedInt(stats, "promptTokensCount");
  out.completion_tokens = ClampedInt(stats, "predictedTokensCount");
  return out;
}

PredictionStream::OpenTool& PredictionStream::StartTool(std::string id) {
  tool_ = OpenTool();
  tool_.index = next_tool_index_++;
  tool_.id = id.empty() ? absl::StrCat(id_prefix_, tool_.index) : std::move(id);
  tool_open_ = true;
  return tool_;
}

GenerateEvent PredictionStream::Delta(OpenTool& tool, std::string text) {
  GenerateEvent e;
  e.kind = GenerateEvent::Kind::kToolCallDelta;
  e.tool_index = tool.index;
  if (!tool.announced) {
    e.tool_id = tool.id;
    e.tool_name = tool.name;
    tool.announced = true;
  }
  e.text = std::move(text);
  return e;
}

void PredictionStream::Consume(const Json& message, std::vector<GenerateEvent>* events) {
  if (done_) return;
  std::string type = StringMember(message, "type");
  if (type == "fragment") {
    const Json* fragment = Member(message, "fragment");
    if (fragment == nullptr) return;
    std::string content = StringMember(*fragment, "content");
    std::string reasoning = StringMember(*fragment, "reasoningType", "none");
    if (content.empty()) return;
    GenerateEvent e;
    if (reasoning == "reasoning") {
      e.kind = GenerateEvent::Kind::kReasoning;
      result_.reasoning += content;
    } else if (reasoning == "none") {
      e.kind = GenerateEvent::Kind::kContent;
      result_.content += content;
    } else {
      return;  // reasoningStartTag / reasoningEndTag: markup, not text
    }
    e.text = std::move(content);
    events->push_back(std::move(e));
  } else if (type == "promptProcessingProgress") {
    GenerateEvent e;
    e.kind = GenerateEvent::Kind::kPromptProgress;
    double p = NumberMember(message, "progress").value_or(0);
    e.progress = std::isfinite(p) ? std::clamp(p, 0.0, 1.0) : 0.0;
    events->push_back(std::move(e));
  } else if (type == "toolCallGenerationStart") {
    StartTool(StringMember(message, "toolCallId"));
  } else if (type == "toolCallGenerationNameReceived") {
    if (!tool_open_) StartTool("");
    tool_.name = StringMember(message, "name");
    if (!tool_.announced) events->push_back(Delta(tool_, ""));
  } else if (type == "toolCallGenerationArgumentFragmentGenerated") {
    if (!tool_open_) StartTool("");
    std::string content = StringMember(message, "content");
    if (content.empty()) return;
    tool_.streamed_args = true;
    events->push_back(Delta(tool_, std::move(content)));
  } else if (type == "toolCallGenerationEnd") {
    const Json* request = Member(message, "toolCallRequest");
    Json empty = Json::object();
    if (request == nullptr) request = &empty;
    std::string host_id = StringMember(*request, "id");
    if (!tool_open_) StartTool(host_id);
    if (!tool_.announced && !host_id.empty()) tool_.id = host_id;
    ToolCall call;
    call.id = tool_.id;
    call.name = StringMember(*request, "name", tool_.name);
    const Json* args = Member(*request, "arguments");
    call.arguments = args != nullptr && args->is_object() ? DumpJson(*args) : "{}";
    if (tool_.name.empty()) tool_.name = call.name;
    if (!tool_.streamed_args) {
      events->push_back(Delta(tool_, call.arguments));
    } else if (!tool_.announced) {
      events->push_back(Delta(tool_, ""));
    }
    result_.tool_calls.push_back(std::move(call));
    tool_open_ = false;
  } else if (type == "toolCallGenerationFailed") {
    tool_open_ = false;
  } else if (type == "success") {
    const Json* stats = Member(message, "stats");
    result_.stats = DecodePredictionStats(stats != nullptr ? *stats : Json::object());
    done_ = true;
  }
}

}  // namespace lmgate::backends::sdk_ws
