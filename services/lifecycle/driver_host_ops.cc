// DriverHostOps: the registry's host operations over a DriverSet, with the one fallback loop.
#include "services/lifecycle/host_ops.h"

#include <optional>


namespace lmgate::lifecycle {

using backends::InstanceInfo;
using backends::LoadParams;

namespace {

// The outcome of a fallback chain worth reporting: the last attempt's, unless that driver could
// not run at all (FAILED_PRECONDITION, e.g. the cli driver without an `lms` binary) after an
// earlier one found the host unavailable — then the host being unreachable is the news, and
// UNAVAILABLE keeps the call retryable.
absl::Status Reported(const absl::Status& first_unavailable, const absl::Status& last) {
  if (!first_unavailable.ok() && absl::IsFailedPrecondition(last)) return first_unavailable;
  return last;
}

}  // namespace

absl::StatusOr<backends::HostModels> DriverHostOps::List(const CallContext& ctx) {
  auto candidates = drivers_->Candidates(DriverKind::kAuto, backends::Operation::kListModels);
  if (!candidates.ok()) return candidates.status();
  absl::StatusOr<backends::HostModels> last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  for (backends::Driver* d : *candidates) {
    last = d->ListModels(ctx);
    if (last.ok()) {
      absl::MutexLock lock(&mu_);
      last_listed_ = d->kind();
    }
    if (!absl::IsUnavailable(last.status())) break;
    if (first_unavailable.ok()) first_unavailable = last.status();
  }
  if (last.ok()) return last;
  return Reported(first_unavailable, last.status());
}

std::optional<DriverKind> DriverHostOps::last_listed() const {
  absl::MutexLock lock(&mu_);
  return last_listed_;
}

absl::StatusOr<InstanceInfo> DriverHostOps::Load(const CallContext& ctx, DriverKind driver,
                                                 const LoadParams& params,
                                                 const backends::LoadProgressFn& progress,
                                                 DriverKind* used) {
  auto candidates = drivers_->Candidates(driver, backends::Operation::kLoad);
  if (!candidates.ok()) return candidates.status();
  absl::StatusOr<InstanceInfo> last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  DriverKind first_unavailable_kind = DriverKind::kAuto;
  for (backends::Driver* d : *candidates) {
    if (used) *used = d->kind();
    last = d->Load(ctx, params, progress);
    if (!absl::IsUnavailable(last.status())) break;
    if (first_unavailable.ok()) {
      first_unavailable = last.status();
      first_unavailable_kind = d->kind();
    }
  }
  if (last.ok()) return last;
  absl::Status reported = Reported(first_unavailable, last.status());
  if (used && reported.code() != last.status().code()) *used = first_unavailable_kind;
  return reported;
}

absl::Status DriverHostOps::Unload(const CallContext& ctx, DriverKind driver,
                                   const std::string& identifier, DriverKind* used) {
  auto candidates = drivers_->Candidates(driver, backends::Operation::kUnload);
  if (!candidates.ok()) return candidates.status();
  absl::Status last = absl::UnavailableError("no driver");
  absl::Status first_unavailable;
  DriverKind first_unavailable_kind = DriverKind::kAuto;
  for (backends::Driver* d : *candidates) {
    if (used) *used = d->kind();
    last = d->Unload(ctx, identifier);
    if (!absl::IsUnavailable(last)) break;
    if (first_unavailable.ok()) {
      first_unavailable = last;
      first_unavailable_kind = d->kind();
    }
  }
  absl::Status reported = Reported(first_unavailable, last);
  if (used && reported.code() != last.code()) *used = first_unavailable_kind;
  return reported;
}

}  // namespace lmgate::lifecycle
