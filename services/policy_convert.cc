// UpdateModelPolicy's messages <-> lifecycle::PolicyUpdate / PolicyView.
#include "absl/strings/str_cat.h"
#include "services/convert.h"

namespace lmgate::services {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

void ToProto(const backends::Sampling& s, v1::SamplingParams* out) {
  if (s.temperature) out->set_temperature(*s.temperature);
  if (s.top_p) out->set_top_p(*s.top_p);
  if (s.top_k) out->set_top_k(*s.top_k);
  if (s.min_p) out->set_min_p(*s.min_p);
  if (s.max_tokens) out->set_max_tokens(*s.max_tokens);
  for (const auto& stop : s.stop) out->add_stop(stop);
  if (s.presence_penalty) out->set_presence_penalty(*s.presence_penalty);
  if (s.frequency_penalty) out->set_frequency_penalty(*s.frequency_penalty);
  if (s.repeat_penalty) out->set_repeat_penalty(*s.repeat_penalty);
  if (s.seed) out->set_seed(*s.seed);
}

void ToProto(const backends::LoadParams& p, v1::LoadConfig* out) {
  if (p.context_length) out->set_context_length(*p.context_length);
  if (p.gpu_offload_ratio) out->set_gpu_offload_ratio(*p.gpu_offload_ratio);
  if (p.cpu_threads) out->set_cpu_threads(*p.cpu_threads);
  if (p.rope_frequency_base) out->set_rope_frequency_base(*p.rope_frequency_base);
  if (p.rope_frequency_scale) out->set_rope_frequency_scale(*p.rope_frequency_scale);
  if (p.flash_attention) out->set_flash_attention(*p.flash_attention);
  if (p.parallel_slots) out->set_parallel_slots(*p.parallel_slots);
  if (p.eval_batch_size) out->set_eval_batch_size(*p.eval_batch_size);
}

}  // namespace

absl::StatusOr<PolicyChange> ToPolicyChange(const v1::UpdateModelPolicyRequest& req) {
  if (auto st = ValidateModelName(req.model(), /*allow_empty=*/false); !st.ok()) return st;
  PolicyChange c;
  c.model = req.model();
  c.reset = req.reset();
  c.make_default = req.make_default();
  if (req.has_ttl()) {
    const google::protobuf::Duration& d = req.ttl();
    if (d.seconds() < 0 || d.nanos() < 0) {
      return Invalid("ttl", "must not be negative (0 = never expire, else 1s..365 days)");
    }
    const absl::Duration ttl = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    if (d.nanos() >= 1000000000) return Invalid("ttl", "nanos must be below one second");
    if (ttl == absl::ZeroDuration()) {
      c.update.ttl = absl::InfiniteDuration();
    } else if (ttl < absl::Seconds(1) || ttl > kMaxTtl) {
      return Invalid("ttl", absl::StrCat("must be 0 (never expire) or 1s..",
                                         absl::FormatDuration(kMaxTtl), ", got ",
                                         absl::FormatDuration(ttl)));
    } else {
      c.update.ttl = ttl;
    }
  }
  if (req.has_keep_loaded()) c.update.keep_loaded = req.keep_loaded();
  const v1::LoadConfig& config = req.config();
  if (!config.identifier().empty()) {
    return Invalid("config.identifier", "is not a policy setting (a policy is per model)");
  }
  if (config.has_ttl()) return Invalid("config.ttl", "is not a policy setting here; set ttl");
  if (config.keep_loaded()) {
    return Invalid("config.keep_loaded", "is not a policy setting here; set keep_loaded");
  }
  // LoadModel's ranges and field names (config.FIELD).
  v1::LoadModelRequest load;
  *load.mutable_config() = config;
  auto params = ToLoadParams(load);
  if (!params.ok()) return params.status();
  c.update.load = *std::move(params);
  auto sampling = ToSampling(req.sampling());
  if (!sampling.ok()) return sampling.status();
  c.update.sampling = *std::move(sampling);
  return c;
}

void ToProto(const lifecycle::ModelRegistry::PolicyView& view, v1::ModelPolicy* out) {
  out->set_model_key(view.model_key);
  const lifecycle::ModelPolicy& p = view.policy;
  if (p.ttl && *p.ttl != absl::InfiniteDuration()) SetDuration(*p.ttl, out->mutable_ttl());
  out->set_keep_loaded(p.keep_loaded);
  ToProto(p.load, out->mutable_config());
  ToProto(p.sampling, out->mutable_sampling());
  out->set_is_default(view.is_default);
  for (const auto& f : view.overridden) out->add_overridden(f);
}

}  // namespace lmgate::services
