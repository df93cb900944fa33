#include "services/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lmgate::services {
namespace {

std::string PresentedKey(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) {
    absl::string_view v(it->second.data(), it->second.size());
    if (v.size() > 7 && absl::EqualsIgnoreCase(v.substr(0, 7), "bearer ")) {
      return std::string(absl::StripAsciiWhitespace(v.substr(7)));
    }
  }
  it = md.find("x-api-key");
  if (it != md.end()) return std::string(it->second.data(), it->second.size());
  return "";
}

}  // namespace

absl::StatusOr<const admission::Tenant*> Authorize(const admission::Identity* identity,
                                                   const grpc::CallbackServerContext* ctx,
                                                   Role role) {
  static const admission::Tenant* anonymous = [] {
    auto* t = new admission::Tenant();
    t->name = "anonymous";
    t->admin = true;
    return t;
  }();
  if (identity == nullptr) return anonymous;
  if (auto st = identity->CheckPeer(ctx->peer()); !st.ok()) return st;
  const admission::Tenant* t = nullptr;
  // mTLS: a verified client certificate names its tenant by common name.
  if (auto auth = ctx->auth_context(); auth && auth->IsPeerAuthenticated()) {
    for (const auto& cn : auth->FindPropertyValues("x509_common_name")) {
      t = identity->FindByClientCn(absl::string_view(cn.data(), cn.size()));
      if (t != nullptr) break;
    }
  }
  if (t == nullptr) {
    auto tenant = identity->Authenticate(PresentedKey(ctx));
    if (!tenant.ok()) return tenant.status();
    t = *tenant;
  }
  if (role == Role::kAdmin && !t->admin) {
    return absl::PermissionDeniedError(
        absl::StrCat("tenant ", t->name,
                     " lacks the admin role needed to load or unload models or read server info"));
  }
  if (role == Role::kInference && !t->inference) {
    return absl::PermissionDeniedError(
        absl::StrCat("tenant ", t->name, " lacks the inference role"));
  }
  return t;
}

}  // namespace lmgate::services
