// LM Studio REST bodies the rest driver reads and writes, apart from the OpenAI-style ones
// (backends/http/openai_wire.h): model lists of /api/v0 and /api/v1, and v1 load/unload.
// Pure functions, thread-safe.
#ifndef LMGATE_BACKENDS_REST_REST_WIRE_H_
#define LMGATE_BACKENDS_REST_REST_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/types.h"

namespace lmgate::backends::rest {

// GET /api/v0/models: every downloaded model with `state`. Loaded entries become instances
// (identifier = id, context length = loaded_context_length); "loading" ones go to loading_keys.
// Entries named "key:N" are instances only. INTERNAL for a malformed answer.
absl::StatusOr<HostModels> ParseV0Models(absl::string_view body);

// GET /api/v1/models: downloaded models with their loaded_instances (id, config.context_length,
// config.parallel; an LLM's config without `parallel` has kDefaultParallelSlots, as some host
// versions leave the default out). INTERNAL for a malformed answer.
absl::StatusOr<HostModels> ParseV1Models(absl::string_view body);

// v1's richer models and instances, plus v0's loading states and any model only v0 lists (a v0
// row named by a v1 instance's identifier is that instance, not a model).
HostModels MergeModels(HostModels v0, HostModels v1);

// POST /api/v1/models/load body: model, context_length, eval_batch_size, flash_attention,
// echo_load_config:true. UNIMPLEMENTED naming the fields REST v1 cannot set (identifier,
// gpu_offload_ratio, cpu_threads, rope_*, parallel_slots, ttl) when any is given.
absl::StatusOr<std::string> BuildLoadBody(const LoadParams& params);

// The load answer {type, instance_id, load_time_seconds, status, load_config?}; a load_config
// without `parallel` means kDefaultParallelSlots for an LLM, as in the listing.
absl::StatusOr<InstanceInfo> ParseLoadResponse(absl::string_view body, const LoadParams& params);

// POST /api/v1/models/unload body.
std::string BuildUnloadBody(const std::string& instance_id);

// Bits per weight from a quantization name ("Q4_K_M" -> 4, "4bit" -> 4, "F16" -> 16); 0 if none.
int QuantizationBits(absl::string_view name);

}  // namespace lmgate::backends::rest

#endif  // LMGATE_BACKENDS_REST_REST_WIRE_H_
