// PolicyStore: the model policies in force and the default model — the config file's (replaced
// by a SIGHUP reload) under a run-time overlay (ModelManager.UpdateModelPolicy) that wins over
// the file for every field it set, across reloads, until the process ends or the overlay of that
// model is reset.
//
// Readers get an immutable snapshot (shared_ptr<const ...>) swapped under the mutex: a policy a
// request read stays valid while the store changes. Thread-safe; never calls out.
#ifndef LMGATE_SERVICES_LIFECYCLE_POLICIES_H_
#define LMGATE_SERVICES_LIFECYCLE_POLICIES_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/driver.h"

namespace lmgate::lifecycle {

// Per-model settings from lmgate's config (and the run-time overlay).
struct ModelPolicy {
  // Load settings for every load lmgate makes of this model (context length, GPU, ...);
  // `model_key`, `identifier` and `ttl` are ignored.
  backends::LoadParams load;
  // Idle TTL; unset = RegistryOptions::default_ttl; absl::InfiniteDuration() = never expires
  // (set at run time to override default_ttl).
  std::optional<absl::Duration> ttl;
  // Never unloaded by TTL or eviction.
  bool keep_loaded = false;
  // Default sampling for requests to this model that leave a field unset.
  backends::Sampling sampling;
};

// A run-time change of one model's policy: set fields replace the policy's, unset ones are kept.
struct PolicyUpdate {
  std::optional<absl::Duration> ttl;  // absl::InfiniteDuration() = never expires
  std::optional<bool> keep_loaded;
  backends::Sampling sampling;  // a non-empty `stop` replaces the stop strings
  backends::LoadParams load;    // model_key, identifier and ttl ignored
};

struct Policies {
  std::map<std::string, ModelPolicy> models;  // by model key
  std::string default_model;                  // "" = none
};

class PolicyStore {
 public:
  PolicyStore(std::map<std::string, ModelPolicy> file, std::string default_model);

  std::shared_ptr<const Policies> Current() const;
  // The effective policy of `model_key`; null when neither the file nor the overlay has one.
  std::shared_ptr<const ModelPolicy> For(const std::string& model_key) const;
  std::string default_model() const;

  // Merges `update` into the overlay of `model_key` (after dropping that overlay when `reset`);
  // `make_default` makes the model the default model (in the overlay too).
  void Update(const std::string& model_key, const PolicyUpdate& update, bool reset,
              bool make_default);
  // A reload: the file's policies and default model are replaced; the overlay stays on top.
  // Returns what the overlay still overrides, as "MODEL.FIELD" and "default_model".
  std::vector<std::string> ReplaceFile(std::map<std::string, ModelPolicy> file,
                                       std::string default_model);
  // Fields of `model_key` set at run time ("ttl", "keep_loaded", "sampling.temperature",
  // "config.context_length", ...), plus "default_model" when the overlay made it the default.
  std::vector<std::string> Overridden(const std::string& model_key) const;

 private:
  void RebuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, ModelPolicy> file_ ABSL_GUARDED_BY(mu_);
  std::string file_default_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PolicyUpdate> overlay_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> default_overlay_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Policies> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lmgate::lifecycle

#endif  // LMGATE_SERVICES_LIFECYCLE_POLICIES_H_
