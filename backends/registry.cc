#include "backends/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lmgate::backends {

absl::Status BackendRegistry::Register(const std::string& name, DriverFactory factory) {
  if (!factories_.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("driver \"", name, "\" is already registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Driver>> BackendRegistry::Create(const std::string& name,
                                                                const HostConfig& config) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown driver \"", name,
                                            "\"; known drivers: ", absl::StrJoin(Names(), ", ")));
  }
  return it->second(config);
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

}  // namespace lmgate::backends
