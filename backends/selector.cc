#include "backends/selector.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lmgate::backends {
namespace {

// The capability table of selector.h, best first.
std::vector<DriverKind> Preference(Operation op) {
  using K = DriverKind;
  switch (op) {
    case Operation::kListModels:
      return {K::kRest, K::kSdk, K::kOpenAi, K::kCli};
    case Operation::kLoad:
    case Operation::kUnload:
      return {K::kSdk, K::kRest, K::kCli};
    case Operation::kChat:
    case Operation::kComplete:
      return {K::kSdk, K::kRest, K::kOpenAi};
    case Operation::kEmbed:
      return {K::kRest, K::kOpenAi, K::kSdk};
    case Operation::kTokenize:
      return {K::kSdk};
  }
  return {};
}

}  // namespace

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kListModels:
      return "list models";
    case Operation::kLoad:
      return "load models";
    case Operation::kUnload:
      return "unload models";
    case Operation::kChat:
      return "chat";
    case Operation::kComplete:
      return "complete text";
    case Operation::kEmbed:
      return "compute embeddings";
    case Operation::kTokenize:
      return "tokenize";
  }
  return "?";
}

bool Supports(const Driver& driver, Operation op, const Requirements& req) {
  const Capabilities c = driver.capabilities();
  bool base = false;
  switch (op) {
    case Operation::kListModels:
      base = c.list_models;
      break;
    case Operation::kLoad:
      base = c.load;
      break;
    case Operation::kUnload:
      base = c.unload;
      break;
    case Operation::kChat:
      base = c.chat;
      break;
    case Operation::kComplete:
      base = c.complete;
      break;
    case Operation::kEmbed:
      base = c.embed;
      break;
    case Operation::kTokenize:
      base = c.tokenize;
      break;
  }
  if (!base) return false;
  if (req.tool_calls && !c.tool_calls) return false;
  if (req.structured_output && !c.structured_output) return false;
  if (req.context_overflow_policy && !c.context_overflow_policy) return false;
  return true;
}

DriverSet::DriverSet(std::vector<std::unique_ptr<Driver>> drivers, bool prefer_configured_order)
    : drivers_(std::move(drivers)), prefer_configured_order_(prefer_configured_order) {}

void DriverSet::Shutdown() const {
  for (const auto& d : drivers_) d->Shutdown();
}

Driver* DriverSet::Get(DriverKind kind) const {
  for (const auto& d : drivers_) {
    if (d->kind() == kind) return d.get();
  }
  return nullptr;
}

absl::StatusOr<std::vector<Driver*>> DriverSet::Candidates(DriverKind requested, Operation op,
                                                           const Requirements& req) const {
  auto enabled_names = [this] {
    std::vector<std::string> names;
    for (const auto& d : drivers_) names.emplace_back(DriverKindName(d->kind()));
    return names.empty() ? std::string("none") : absl::StrJoin(names, ", ");
  };
  auto able_names = [&] {
    std::vector<std::string> names;
    for (DriverKind k : Preference(op)) {
      Driver* d = Get(k);
      if (d != nullptr && Supports(*d, op, req)) names.emplace_back(DriverKindName(k));
    }
    return names.empty() ? std::string("none of the enabled drivers") : absl::StrJoin(names, ", ");
  };
  const std::string what =
      absl::StrCat(OperationName(op), req.tool_calls ? " with tools" : "",
                   req.structured_output ? " with structured output" : "",
                   req.context_overflow_policy ? " with a context overflow policy" : "");

  if (requested != DriverKind::kAuto) {
    Driver* d = Get(requested);
    if (d == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("driver ", DriverKindName(requested), " is not enabled on this gateway (",
                       "enabled: ", enabled_names(), "); use DRIVER_AUTO or enable it"));
    }
    if (!Supports(*d, op, req)) {
      return absl::UnimplementedError(absl::StrCat("the ", DriverKindName(requested),
                                                   " driver cannot ", what,
                                                   "; drivers that can: ", able_names()));
    }
    return std::vector<Driver*>{d};
  }

  std::vector<Driver*> out;
  if (prefer_configured_order_) {
    for (const auto& d : drivers_) {
      if (Supports(*d, op, req)) out.push_back(d.get());
    }
  } else {
    for (DriverKind k : Preference(op)) {
      Driver* d = Get(k);
      if (d != nullptr && Supports(*d, op, req)) out.push_back(d);
    }
  }
  if (out.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no enabled driver can ", what, " (enabled: ", enabled_names(), ")"));
  }
  return out;
}

}  // namespace lmgate::backends
