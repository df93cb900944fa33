// DriverSet: the drivers enabled for one host, and the per-request selection rule.
//
// Selection (README "Driver selection"):
// - An explicit driver must be enabled (else FAILED_PRECONDITION naming the enabled ones) and
//   offer the operation (else UNIMPLEMENTED naming which drivers do).
// - AUTO returns every enabled driver that offers the operation, best first by the capability
//   table below; callers fall back to the next one only when a driver answers UNAVAILABLE before
//   anything was streamed.
//
//   operation     preference (best first)         why
//   list models   rest, sdk_ws, openai, cli        v0 lists downloaded + state in one call
//   load          sdk_ws, rest, cli                SDK reports progress; v1 load; lms load
//   unload        sdk_ws, rest, cli
//   chat/complete sdk_ws, rest, openai             stats + real cancel; v0 stats; plain
//   embed         rest, openai, sdk_ws             batch in one call (SDK: one call per input)
//   tokenize      sdk_ws                           the only interface with a tokenizer
//
// The configured `order` (e.g. --drivers=rest,openai) restricts and re-ranks: drivers absent from
// it are disabled, and among those offering an operation the table's order holds unless
// `prefer_configured_order` is set.
#ifndef LMGATE_BACKENDS_SELECTOR_H_
#define LMGATE_BACKENDS_SELECTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/driver.h"

namespace lmgate::backends {

enum class Operation { kListModels, kLoad, kUnload, kChat, kComplete, kEmbed, kTokenize };

absl::string_view OperationName(Operation op);

// Extra needs of one request that narrow the choice.
struct Requirements {
  bool tool_calls = false;
  bool structured_output = false;
  // A context overflow policy was asked for (only the SDK carries one).
  bool context_overflow_policy = false;
};

// Thread-safe after construction (immutable). Owned jointly (shared_ptr) by main.cc and the
// server's gateway; whoever holds it last destroys the drivers. Shutdown() stops them first.
class DriverSet {
 public:
  // `drivers` in the configured order; at most one per kind.
  explicit DriverSet(std::vector<std::unique_ptr<Driver>> drivers,
                     bool prefer_configured_order = false);

  // nullptr if that kind is not enabled.
  Driver* Get(DriverKind kind) const;
  const std::vector<std::unique_ptr<Driver>>& drivers() const { return drivers_; }
  // Driver::Shutdown() of every driver, in the configured order. Idempotent.
  void Shutdown() const;

  // Ordered candidates for `op` (never empty on success). See the file comment for errors.
  absl::StatusOr<std::vector<Driver*>> Candidates(DriverKind requested, Operation op,
                                                  const Requirements& req = {}) const;

 private:
  std::vector<std::unique_ptr<Driver>> drivers_;
  bool prefer_configured_order_;
};

// True if `driver` offers `op` with `req`.
bool Supports(const Driver& driver, Operation op, const Requirements& req = {});

}  // namespace lmgate::backends

#endif  // LMGATE_BACKENDS_SELECTOR_H_
