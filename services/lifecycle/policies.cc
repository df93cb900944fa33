#include "services/lifecycle/policies.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace lmgate::lifecycle {
namespace {

using Names = std::vector<std::string>;

template <typename T>
void Take(const std::optional<T>& from, std::optional<T>* to, const char* name, Names* names) {
  if (!from) return;
  *to = from;
  if (names) names->push_back(name);
}

// Copies the set fields of `from` over `to`, naming each in `names` (if not null).
void MergeSampling(const backends::Sampling& from, backends::Sampling* to, Names* names) {
  Take(from.temperature, &to->temperature, "sampling.temperature", names);
  Take(from.top_p, &to->top_p, "sampling.top_p", names);
  Take(from.top_k, &to->top_k, "sampling.top_k", names);
  Take(from.min_p, &to->min_p, "sampling.min_p", names);
  Take(from.max_tokens, &to->max_tokens, "sampling.max_tokens", names);
  if (!from.stop.empty()) {
    to->stop = from.stop;
    if (names) names->push_back("sampling.stop");
  }
  Take(from.presence_penalty, &to->presence_penalty, "sampling.presence_penalty", names);
  Take(from.frequency_penalty, &to->frequency_penalty, "sampling.frequency_penalty", names);
  Take(from.repeat_penalty, &to->repeat_penalty, "sampling.repeat_penalty", names);
  Take(from.seed, &to->seed, "sampling.seed", names);
}

void MergeLoad(const backends::LoadParams& from, backends::LoadParams* to, Names* names) {
  Take(from.context_length, &to->context_length, "config.context_length", names);
  Take(from.gpu_offload_ratio, &to->gpu_offload_ratio, "config.gpu_offload_ratio", names);
  Take(from.cpu_threads, &to->cpu_threads, "config.cpu_threads", names);
  Take(from.rope_frequency_base, &to->rope_frequency_base, "config.rope_frequency_base", names);
  Take(from.rope_frequency_scale, &to->rope_frequency_scale, "config.rope_frequency_scale",
       names);
  Take(from.flash_attention, &to->flash_attention, "config.flash_attention", names);
  Take(from.parallel_slots, &to->parallel_slots, "config.parallel_slots", names);
  Take(from.eval_batch_size, &to->eval_batch_size, "config.eval_batch_size", names);
}

// The overlay `u` applied to `p`; `names` gets the fields it sets.
void Apply(const PolicyUpdate& u, ModelPolicy* p, Names* names) {
  Take(u.ttl, &p->ttl, "ttl", names);
  if (u.keep_loaded) {
    p->keep_loaded = *u.keep_loaded;
    if (names) names->push_back("keep_loaded");
  }
  MergeSampling(u.sampling, &p->sampling, names);
  MergeLoad(u.load, &p->load, names);
}

}  // namespace

PolicyStore::PolicyStore(std::map<std::string, ModelPolicy> file, std::string default_model)
    : file_(std::move(file)), file_default_(std::move(default_model)) {
  absl::MutexLock lock(&mu_);
  RebuildLocked();
}

void PolicyStore::RebuildLocked() {
  auto next = std::make_shared<Policies>();
  next->models = file_;
  for (const auto& [key, u] : overlay_) Apply(u, &next->models[key], nullptr);
  next->default_model = default_overlay_.value_or(file_default_);
  current_ = std::move(next);
}

std::shared_ptr<const Policies> PolicyStore::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::shared_ptr<const ModelPolicy> PolicyStore::For(const std::string& model_key) const {
  std::shared_ptr<const Policies> p = Current();
  auto it = p->models.find(model_key);
  if (it == p->models.end()) return nullptr;
  // Aliasing: the policy keeps its whole snapshot alive.
  return std::shared_ptr<const ModelPolicy>(p, &it->second);
}

std::string PolicyStore::default_model() const { return Current()->default_model; }

void PolicyStore::Update(const std::string& model_key, const PolicyUpdate& update, bool reset,
                         bool make_default) {
  absl::MutexLock lock(&mu_);
  if (reset) {
    overlay_.erase(model_key);
    if (default_overlay_ == model_key) default_overlay_.reset();
  }
  PolicyUpdate& o = overlay_[model_key];
  Take(update.ttl, &o.ttl, "", nullptr);
  Take(update.keep_loaded, &o.keep_loaded, "", nullptr);
  MergeSampling(update.sampling, &o.sampling, nullptr);
  MergeLoad(update.load, &o.load, nullptr);
  if (make_default) default_overlay_ = model_key;
  RebuildLocked();
}

std::vector<std::string> PolicyStore::ReplaceFile(std::map<std::string, ModelPolicy> file,
                                                  std::string default_model) {
  absl::MutexLock lock(&mu_);
  file_ = std::move(file);
  file_default_ = std::move(default_model);
  RebuildLocked();
  Names out;
  for (const auto& [key, u] : overlay_) {
    Names fields;
    ModelPolicy scratch;
    Apply(u, &scratch, &fields);
    for (const auto& f : fields) out.push_back(absl::StrCat(key, ".", f));
  }
  if (default_overlay_ && *default_overlay_ != file_default_) {
    out.push_back(absl::StrCat("default_model (", *default_overlay_, ")"));
  }
  return out;
}

std::vector<std::string> PolicyStore::Overridden(const std::string& model_key) const {
  absl::MutexLock lock(&mu_);
  Names fields;
  if (auto it = overlay_.find(model_key); it != overlay_.end()) {
    ModelPolicy scratch;
    Apply(it->second, &scratch, &fields);
  }
  if (default_overlay_ == model_key) fields.push_back("default_model");
  return fields;
}

}  // namespace lmgate::lifecycle
