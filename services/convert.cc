#include "services/convert.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/json.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace lmgate::services {
namespace {

using backends::DriverKind;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Duration ToAbslDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  *out = TimeUtil::NanosecondsToDuration(ns);
}

namespace {

absl::Status ValidateDriver(v1::Driver driver) {
  if (!v1::Driver_IsValid(driver)) {
    return Invalid("driver", absl::StrCat("unknown value ", static_cast<int>(driver),
                                          "; use DRIVER_AUTO, DRIVER_SDK, DRIVER_REST, "
                                          "DRIVER_OPENAI or DRIVER_CLI"));
  }
  return absl::OkStatus();
}

// Depth first, without recursion: what a driver later copies and dumps recursively is bounded
// before nlohmann looks at it (accept() itself is iterative and builds nothing).
absl::Status ValidateJson(absl::string_view field, const std::string& text,
                          const ValidationLimits& limits) {
  if (backends::JsonDepth(text, limits.max_json_depth) > limits.max_json_depth) {
    return Invalid(field, absl::StrCat("is nested deeper than ", limits.max_json_depth,
                                       " levels (config max_json_depth)"));
  }
  if (!nlohmann::json::accept(text)) return Invalid(field, "is not valid JSON");
  return absl::OkStatus();
}

// A google.protobuf.Duration that is well-formed (nanos within a second, the same sign as
// seconds) and within [lo, hi].
absl::Status ValidateDuration(absl::string_view field, const google::protobuf::Duration& d,
                              absl::Duration lo, absl::Duration hi) {
  const bool nanos_ok = d.nanos() > -1000000000 && d.nanos() < 1000000000 &&
                        !(d.seconds() > 0 && d.nanos() < 0) && !(d.seconds() < 0 && d.nanos() > 0);
  if (!nanos_ok) {
    return Invalid(field, absl::StrCat("nanos ", d.nanos(),
                                       " is not a fraction of a second with the sign of seconds"));
  }
  const absl::Duration v = ToAbslDuration(d);
  if (v < lo || v > hi) {
    return Invalid(field, absl::StrCat("must be ", absl::FormatDuration(lo), "..",
                                       absl::FormatDuration(hi), ", got ", d.seconds(), "s"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTtl(absl::string_view field, const google::protobuf::Duration& d) {
  return ValidateDuration(field, d, absl::Seconds(1), kMaxTtl);
}

absl::Status ValidatePriority(v1::Priority priority) {
  if (!v1::Priority_IsValid(priority)) {
    return Invalid("priority", absl::StrCat("unknown value ", static_cast<int>(priority),
                                            "; use PRIORITY_LOW, PRIORITY_NORMAL or PRIORITY_HIGH"));
  }
  return absl::OkStatus();
}

absl::Status IntRange(absl::string_view field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) return Invalid(field, absl::StrCat("must be ", lo, "..", hi, ", got ", v));
  return absl::OkStatus();
}

absl::Status RangeCheck(absl::string_view field, double v, double lo, double hi,
                        bool lo_open = false) {
  if (std::isnan(v) || v > hi || v < lo || (lo_open && v == lo)) {
    return Invalid(field, absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi,
                                       "], got ", v));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<backends::Sampling> ToSampling(const v1::SamplingParams& s) {
  backends::Sampling out;
  if (s.has_temperature()) {
    if (auto st = RangeCheck("sampling.temperature", s.temperature(), 0, 2); !st.ok()) return st;
    out.temperature = s.temperature();
  }
  if (s.has_top_p()) {
    if (auto st = RangeCheck("sampling.top_p", s.top_p(), 0, 1, true); !st.ok()) return st;
    out.top_p = s.top_p();
  }
  if (s.has_top_k()) {
    if (auto st = IntRange("sampling.top_k", s.top_k(), 0, kMaxTopK); !st.ok()) return st;
    out.top_k = s.top_k();
  }
  if (s.has_min_p()) {
    if (auto st = RangeCheck("sampling.min_p", s.min_p(), 0, 1); !st.ok()) return st;
    out.min_p = s.min_p();
  }
  if (s.has_max_tokens()) {
    if (auto st = IntRange("sampling.max_tokens", s.max_tokens(), 1, kMaxContextLength); !st.ok())
      return st;
    out.max_tokens = s.max_tokens();
  }
  if (s.stop_size() > kMaxStopStrings) {
    return Invalid("sampling.stop", absl::StrCat("at most ", kMaxStopStrings, " stop strings"));
  }
  for (const auto& stop : s.stop()) {
    if (stop.empty() || stop.size() > kMaxStopStringBytes) {
      return Invalid("sampling.stop", absl::StrCat("each stop string must be 1..",
                                                   kMaxStopStringBytes, " bytes"));
    }
    out.stop.push_back(stop);
  }
  if (s.has_presence_penalty()) {
    if (auto st = RangeCheck("sampling.presence_penalty", s.presence_penalty(), -2, 2); !st.ok())
      return st;
    out.presence_penalty = s.presence_penalty();
  }
  if (s.has_frequency_penalty()) {
    if (auto st = RangeCheck("sampling.frequency_penalty", s.frequency_penalty(), -2, 2);
        !st.ok())
      return st;
    out.frequency_penalty = s.frequency_penalty();
  }
  if (s.has_repeat_penalty()) {
    if (auto st = RangeCheck("sampling.repeat_penalty", s.repeat_penalty(), 0, 10, true);
        !st.ok())
      return st;
    out.repeat_penalty = s.repeat_penalty();
  }
  if (s.has_seed()) out.seed = s.seed();
  return out;
}

namespace {

absl::Status ValidateText(absl::string_view field, const std::string& text) {
  if (text.size() > kMaxTextBytes) {
    return Invalid(field, absl::StrCat("is ", text.size(), " bytes; the limit is ", kMaxTextBytes));
  }
  return absl::OkStatus();
}

backends::OverflowPolicy ToOverflow(v1::ContextOverflowPolicy p) {
  switch (p) {
    case v1::CONTEXT_OVERFLOW_POLICY_STOP_AT_LIMIT:
      return backends::OverflowPolicy::kStopAtLimit;
    case v1::CONTEXT_OVERFLOW_POLICY_TRUNCATE_MIDDLE:
      return backends::OverflowPolicy::kTruncateMiddle;
    case v1::CONTEXT_OVERFLOW_POLICY_ROLLING_WINDOW:
      return backends::OverflowPolicy::kRollingWindow;
    default:
      return backends::OverflowPolicy::kUnset;
  }
}

// Fields common to Chat and Complete.
template <typename Req>
absl::Status FillCommon(const Req& req, const ValidationLimits& limits,
                        gateway::GenerateCall* call) {
  if (auto st = ValidateModelName(req.model(), true); !st.ok()) return st;
  if (auto st = ValidateDriver(req.driver()); !st.ok()) return st;
  if (!v1::ContextOverflowPolicy_IsValid(req.context_overflow_policy())) {
    return Invalid("context_overflow_policy", "unknown value");
  }
  if (auto st = ValidatePriority(req.priority()); !st.ok()) return st;
  if (req.has_ttl_hint()) {
    if (auto st = ValidateTtl("ttl_hint", req.ttl_hint()); !st.ok()) return st;
  }
  call->model = req.model();
  call->driver = FromProto(req.driver());
  if (req.has_ttl_hint()) call->ttl_hint = ToAbslDuration(req.ttl_hint());
  switch (req.priority()) {
    case v1::PRIORITY_LOW:
      call->priority = admission::Priority::kLow;
      break;
    case v1::PRIORITY_HIGH:
      call->priority = admission::Priority::kHigh;
      break;
    default:
      call->priority = admission::Priority::kNormal;
  }
  auto sampling = ToSampling(req.sampling());
  if (!sampling.ok()) return sampling.status();
  call->request.sampling = *std::move(sampling);
  if (req.has_structured_output()) {
    const auto& so = req.structured_output();
    if (so.json_schema().empty()) return Invalid("structured_output.json_schema", "is empty");
    if (auto st = ValidateJson("structured_output.json_schema", so.json_schema(), limits);
        !st.ok())
      return st;
    call->request.json_schema = so.json_schema();
    call->request.schema_name = so.name().empty() ? "response" : so.name();
  }
  call->request.overflow = ToOverflow(req.context_overflow_policy());
  return absl::OkStatus();
}

}  // namespace

DriverKind FromProto(v1::Driver driver) {
  switch (driver) {
    case v1::DRIVER_SDK:
      return DriverKind::kSdk;
    case v1::DRIVER_REST:
      return DriverKind::kRest;
    case v1::DRIVER_OPENAI:
      return DriverKind::kOpenAi;
    case v1::DRIVER_CLI:
      return DriverKind::kCli;
    default:
      return DriverKind::kAuto;
  }
}

v1::Driver ToProto(DriverKind driver) { return static_cast<v1::Driver>(driver); }

absl::Status ValidateModelName(const std::string& model, bool allow_empty) {
  if (model.empty()) {
    return allow_empty ? absl::OkStatus() : Invalid("model", "must not be empty");
  }
  if (model.size() > kMaxModelNameBytes) {
    return Invalid("model", absl::StrCat("longer than ", kMaxModelNameBytes, " bytes"));
  }
  for (unsigned char c : model) {
    if (c < 0x20 || c == 0x7f) return Invalid("model", "contains control characters");
  }
  // Names reach `lms` as arguments; one starting with '-' would be read as an option there.
  if (model[0] == '-') return Invalid("model", "must not start with '-'");
  return absl::OkStatus();
}

absl::StatusOr<gateway::GenerateCall> ToGenerateCall(const v1::ChatRequest& req,
                                                     const ValidationLimits& limits) {
  gateway::GenerateCall call;
  call.request.chat = true;
  if (auto st = FillCommon(req, limits, &call); !st.ok()) return st;
  if (req.messages_size() == 0) return Invalid("messages", "must not be empty");
  if (req.messages_size() > kMaxMessages) {
    return Invalid("messages", absl::StrCat("at most ", kMaxMessages, " messages"));
  }
  for (int i = 0; i < req.messages_size(); ++i) {
    const auto& m = req.messages(i);
    const std::string field = absl::StrCat("messages[", i, "]");
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant" &&
        m.role() != "tool") {
      return Invalid(field + ".role", absl::StrCat("\"", m.role(),
                                                   "\" is not one of system, user, assistant, tool"));
    }
    if (auto st = ValidateText(field + ".content", m.content()); !st.ok()) return st;
    if (m.tool_calls_size() > 0 && m.role() != "assistant") {
      return Invalid(field + ".tool_calls", "only assistant messages carry tool calls");
    }
    if (m.content().empty() && m.tool_calls_size() == 0 && m.role() != "assistant") {
      return Invalid(field + ".content", "must not be empty");
    }
    backends::Message msg{m.role(), m.content(), {}, m.tool_call_id(), m.name()};
    for (int j = 0; j < m.tool_calls_size(); ++j) {
      const auto& tc = m.tool_calls(j);
      if (!tc.arguments().empty()) {
        if (auto st = ValidateJson(absl::StrCat(field, ".tool_calls[", j, "].arguments"),
                                   tc.arguments(), limits);
            !st.ok())
          return st;
      }
      msg.tool_calls.push_back({tc.id(), tc.name(), tc.arguments()});
    }
    call.request.messages.push_back(std::move(msg));
  }
  for (int i = 0; i < req.tools_size(); ++i) {
    const auto& t = req.tools(i);
    const std::string field = absl::StrCat("tools[", i, "]");
    if (t.name().empty()) return Invalid(field + ".name", "must not be empty");
    if (!t.parameters_json_schema().empty()) {
      if (auto st = ValidateJson(field + ".parameters_json_schema", t.parameters_json_schema(),
                                 limits);
          !st.ok())
        return st;
    }
    call.request.tools.push_back({t.name(), t.description(), t.parameters_json_schema()});
  }
  if (!v1::ToolChoice::Mode_IsValid(req.tool_choice().mode())) {
    return Invalid("tool_choice.mode", "unknown value");
  }
  switch (req.tool_choice().mode()) {
    case v1::ToolChoice::MODE_AUTO:
      call.request.tool_choice = backends::ToolChoice::kAuto;
      break;
    case v1::ToolChoice::MODE_NONE:
      call.request.tool_choice = backends::ToolChoice::kNone;
      break;
    case v1::ToolChoice::MODE_REQUIRED:
      if (req.tools_size() == 0) return Invalid("tool_choice", "REQUIRED needs tools");
      call.request.tool_choice = backends::ToolChoice::kRequired;
      break;
    default:
      break;
  }
  return call;
}

absl::StatusOr<gateway::GenerateCall> ToGenerateCall(const v1::CompleteRequest& req,
                                                     const ValidationLimits& limits) {
  gateway::GenerateCall call;
  call.request.chat = false;
  if (auto st = FillCommon(req, limits, &call); !st.ok()) return st;
  if (req.prompt().empty()) return Invalid("prompt", "must not be empty");
  if (auto st = ValidateText("prompt", req.prompt()); !st.ok()) return st;
  call.request.prompt = req.prompt();
  return call;
}

absl::Status ValidateEmbed(const v1::EmbedRequest& req) {
  if (auto st = ValidateModelName(req.model(), true); !st.ok()) return st;
  if (auto st = ValidateDriver(req.driver()); !st.ok()) return st;
  if (auto st = ValidatePriority(req.priority()); !st.ok()) return st;
  if (req.has_ttl_hint()) {
    if (auto st = ValidateTtl("ttl_hint", req.ttl_hint()); !st.ok()) return st;
  }
  if (req.inputs_size() == 0) return Invalid("inputs", "must not be empty");
  if (req.inputs_size() > kMaxEmbedInputs) {
    return Invalid("inputs", absl::StrCat("at most ", kMaxEmbedInputs, " inputs per call"));
  }
  for (int i = 0; i < req.inputs_size(); ++i) {
    const std::string field = absl::StrCat("inputs[", i, "]");
    if (req.inputs(i).empty()) return Invalid(field, "must not be empty");
    if (auto st = ValidateText(field, req.inputs(i)); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ValidateTokenize(const v1::TokenizeRequest& req) {
  if (auto st = ValidateModelName(req.model(), true); !st.ok()) return st;
  if (auto st = ValidateDriver(req.driver()); !st.ok()) return st;
  return ValidateText("text", req.text());
}

absl::StatusOr<backends::LoadParams> ToLoadParams(const v1::LoadModelRequest& req) {
  if (auto st = ValidateModelName(req.model(), true); !st.ok()) return st;
  if (auto st = ValidateDriver(req.driver()); !st.ok()) return st;
  const v1::LoadConfig& c = req.config();
  backends::LoadParams p;
  p.model_key = req.model();
  p.identifier = c.identifier();
  if (auto st = ValidateModelName(c.identifier(), true); !st.ok()) {
    return Invalid("config.identifier", st.message());
  }
  if (c.has_context_length()) {
    if (auto st = IntRange("config.context_length", c.context_length(), 1, kMaxContextLength);
        !st.ok())
      return st;
    p.context_length = c.context_length();
  }
  if (c.has_gpu_offload_ratio()) {
    if (auto st = RangeCheck("config.gpu_offload_ratio", c.gpu_offload_ratio(), 0, 1); !st.ok())
      return st;
    p.gpu_offload_ratio = c.gpu_offload_ratio();
  }
  if (c.has_cpu_threads()) {
    if (c.cpu_threads() < 1 || c.cpu_threads() > 1024)
      return Invalid("config.cpu_threads", "must be 1..1024");
    p.cpu_threads = c.cpu_threads();
  }
  if (c.has_rope_frequency_base()) {
    if (auto st = RangeCheck("config.rope_frequency_base", c.rope_frequency_base(), 0,
                             kMaxRopeFrequencyBase, /*lo_open=*/true);
        !st.ok())
      return st;
    p.rope_frequency_base = c.rope_frequency_base();
  }
  if (c.has_rope_frequency_scale()) {
    if (auto st = RangeCheck("config.rope_frequency_scale", c.rope_frequency_scale(), 0,
                             kMaxRopeFrequencyScale, /*lo_open=*/true);
        !st.ok())
      return st;
    p.rope_frequency_scale = c.rope_frequency_scale();
  }
  if (c.has_flash_attention()) p.flash_attention = c.flash_attention();
  if (c.has_parallel_slots()) {
    if (c.parallel_slots() < 1 || c.parallel_slots() > 64)
      return Invalid("config.parallel_slots", "must be 1..64");
    p.parallel_slots = c.parallel_slots();
  }
  if (c.has_eval_batch_size()) {
    if (auto st = IntRange("config.eval_batch_size", c.eval_batch_size(), 1, kMaxEvalBatchSize);
        !st.ok())
      return st;
    p.eval_batch_size = c.eval_batch_size();
  }
  if (c.has_ttl()) {
    if (auto st = ValidateTtl("config.ttl", c.ttl()); !st.ok()) return st;
    p.ttl = ToAbslDuration(c.ttl());
  }
  return p;
}

absl::Status ValidateLoadForModel(const backends::LoadParams& params,
                                  const backends::ModelInfo& model) {
  if (params.context_length && model.max_context_length > 0 &&
      *params.context_length > model.max_context_length) {
    return Invalid("config.context_length",
                   absl::StrCat(*params.context_length, " is above the maximum of ", model.key,
                                ", ", model.max_context_length, " tokens (its max_context_length)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUnload(const v1::UnloadModelRequest& req) {
  if (auto st = ValidateModelName(req.model(), false); !st.ok()) return st;
  return ValidateDriver(req.driver());
}

absl::Status ValidateListModels(const v1::ListModelsRequest& req) {
  if (!v1::ModelType_IsValid(req.type())) {
    return Invalid("type", absl::StrCat("unknown value ", static_cast<int>(req.type())));
  }
  return ValidateDriver(req.driver());
}

absl::Status ValidateWatch(const v1::WatchModelsRequest& req) {
  return ValidateModelName(req.model(), true);
}

v1::StopReason ToProto(backends::StopReason reason) {
  using R = backends::StopReason;
  switch (reason) {
    case R::kEos:
      return v1::STOP_REASON_EOS;
    case R::kStopString:
      return v1::STOP_REASON_STOP_STRING;
    case R::kMaxTokens:
      return v1::STOP_REASON_MAX_TOKENS;
    case R::kContextLength:
      return v1::STOP_REASON_CONTEXT_LENGTH;
    case R::kToolCalls:
      return v1::STOP_REASON_TOOL_CALLS;
    case R::kUserStopped:
      return v1::STOP_REASON_USER_STOPPED;
    case R::kModelUnloaded:
      return v1::STOP_REASON_MODEL_UNLOADED;
    case R::kUnspecified:
      break;
  }
  return v1::STOP_REASON_UNSPECIFIED;
}

void ToProto(const gateway::GenerateOutcome& o, v1::InferenceResult* out) {
  out->set_content(o.result.content);
  out->set_reasoning(o.result.reasoning);
  for (const auto& tc : o.result.tool_calls) {
    auto* t = out->add_tool_calls();
    t->set_id(tc.id);
    t->set_name(tc.name);
    t->set_arguments(tc.arguments);
  }
  out->set_response_id(o.response_id);
  const backends::GenerateStats& s = o.result.stats;
  v1::InferenceStats* st = out->mutable_stats();
  if (s.time_to_first_token) SetDuration(*s.time_to_first_token, st->mutable_time_to_first_token());
  if (s.tokens_per_second) st->set_tokens_per_second(*s.tokens_per_second);
  st->set_prompt_tokens(s.prompt_tokens);
  st->set_completion_tokens(s.completion_tokens);
  st->set_stop_reason(ToProto(s.stop_reason));
  st->set_stop_string(s.stop_string);
  st->set_driver(ToProto(o.driver));
  SetDuration(o.queue_wait, st->mutable_queue_wait());
  SetDuration(o.load_wait, st->mutable_load_wait());
  SetDuration(o.total_time, st->mutable_total_time());
  st->set_model_key(o.model_key);
  st->set_instance(o.instance);
  st->set_upstream_timings(s.upstream_timings);
}

v1::ModelState ToProto(lifecycle::State state) {
  switch (state) {
    case lifecycle::State::kNotLoaded:
      return v1::MODEL_STATE_NOT_LOADED;
    case lifecycle::State::kLoading:
      return v1::MODEL_STATE_LOADING;
    case lifecycle::State::kReady:
      return v1::MODEL_STATE_READY;
    case lifecycle::State::kUnloading:
      return v1::MODEL_STATE_UNLOADING;
    case lifecycle::State::kFailed:
      return v1::MODEL_STATE_FAILED;
  }
  return v1::MODEL_STATE_UNSPECIFIED;
}

namespace {

// Every setting of `p` that is set (ttl and identifier included); keep_loaded is the caller's.
void ToProto(const backends::LoadParams& p, v1::LoadConfig* c) {
  if (p.context_length) c->set_context_length(*p.context_length);
  if (p.gpu_offload_ratio) c->set_gpu_offload_ratio(*p.gpu_offload_ratio);
  if (p.cpu_threads) c->set_cpu_threads(*p.cpu_threads);
  if (p.rope_frequency_base) c->set_rope_frequency_base(*p.rope_frequency_base);
  if (p.rope_frequency_scale) c->set_rope_frequency_scale(*p.rope_frequency_scale);
  if (p.flash_attention) c->set_flash_attention(*p.flash_attention);
  if (p.parallel_slots) c->set_parallel_slots(*p.parallel_slots);
  if (p.eval_batch_size) c->set_eval_batch_size(*p.eval_batch_size);
  if (p.ttl) SetDuration(*p.ttl, c->mutable_ttl());
  c->set_identifier(p.identifier);
}

}  // namespace

void ToProto(const lifecycle::InstanceSnapshot& s, v1::ModelInstance* out) {
  const backends::InstanceInfo& inst = s.info;
  out->set_identifier(inst.identifier);
  out->set_model_key(inst.model_key);
  out->set_state(ToProto(s.state));
  out->set_context_length(inst.context_length);
  if (s.ttl) SetDuration(*s.ttl, out->mutable_ttl());
  if (s.last_used) {
    *out->mutable_last_used() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*s.last_used));
  }
  out->set_in_flight(s.in_flight);
  out->set_parallel_slots(inst.parallel_slots);
  out->set_keep_loaded(s.keep_loaded);
  v1::LoadConfig* c = out->mutable_load_config();
  ToProto(s.load_config, c);
  if (inst.context_length > 0) c->set_context_length(inst.context_length);
  if (inst.parallel_slots > 0) c->set_parallel_slots(inst.parallel_slots);
  if (s.ttl) SetDuration(*s.ttl, c->mutable_ttl());
  c->set_identifier(inst.identifier);
  c->set_keep_loaded(s.keep_loaded);
}

void ToProto(const lifecycle::ModelSnapshot& m, v1::Model* out) {
  const backends::ModelInfo& i = m.info;
  out->set_key(i.key);
  out->set_display_name(i.display_name);
  out->set_type(i.type == backends::ModelType::kLlm         ? v1::MODEL_TYPE_LLM
                : i.type == backends::ModelType::kEmbedding ? v1::MODEL_TYPE_EMBEDDING
                                                            : v1::MODEL_TYPE_UNSPECIFIED);
  out->set_format(i.format);
  out->set_size_bytes(i.size_bytes);
  out->set_quantization(i.quantization);
  out->set_quantization_bits(i.quantization_bits);
  out->set_max_context_length(i.max_context_length);
  out->set_publisher(i.publisher);
  out->set_architecture(i.architecture);
  out->set_params(i.params);
  out->set_vision(i.vision);
  out->set_trained_for_tool_use(i.trained_for_tool_use);
  out->set_state(ToProto(m.state));
  out->set_state_reason(m.reason);
  for (const auto& inst : m.instances) ToProto(inst, out->add_instances());
}

void ToProto(const lifecycle::Event& e, v1::ModelEvent* out) {
  using K = lifecycle::Event::Kind;
  static const std::pair<K, v1::ModelEvent::Kind> kKinds[] = {
      {K::kSnapshot, v1::ModelEvent::KIND_SNAPSHOT},
      {K::kLoadStarted, v1::ModelEvent::KIND_LOAD_STARTED},
      {K::kLoadProgress, v1::ModelEvent::KIND_LOAD_PROGRESS},
      {K::kLoaded, v1::ModelEvent::KIND_LOADED},
      {K::kLoadFailed, v1::ModelEvent::KIND_LOAD_FAILED},
      {K::kLoadCancelled, v1::ModelEvent::KIND_LOAD_CANCELLED},
      {K::kUnloadStarted, v1::ModelEvent::KIND_UNLOAD_STARTED},
      {K::kUnloaded, v1::ModelEvent::KIND_UNLOADED},
      {K::kExpired, v1::ModelEvent::KIND_EXPIRED},
      {K::kEvicted, v1::ModelEvent::KIND_EVICTED},
      {K::kExternalChange, v1::ModelEvent::KIND_EXTERNAL_CHANGE},
  };
  for (const auto& [k, v] : kKinds) {
    if (k == e.kind) out->set_kind(v);
  }
  *out->mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(e.time));
  out->set_model_key(e.model_key);
  out->set_instance(e.instance);
  out->set_state(ToProto(e.state));
  out->set_progress(e.progress);
  out->set_reason(e.reason);
  out->set_tenant(e.tenant);
  if (e.duration > absl::ZeroDuration()) SetDuration(e.duration, out->mutable_duration());
  if (e.load_config) ToProto(*e.load_config, out->mutable_load_config());
  out->set_events_dropped(e.events_dropped);
}

}  // namespace lmgate::services
