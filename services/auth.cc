#include "services/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lmgate::services {
namespace {

std::string PresentedKey(absl::string_view authorization, absl::string_view x_api_key) {
  if (authorization.size() > 7 && absl::EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
    return std::string(absl::StripAsciiWhitespace(authorization.substr(7)));
  }
  return std::string(x_api_key);
}

std::string PresentedKey(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto value = [&md](const char* name) {
    auto it = md.find(name);
    return it == md.end() ? absl::string_view()
                          : absl::string_view(it->second.data(), it->second.size());
  };
  return PresentedKey(value("authorization"), value("x-api-key"));
}

const admission::Tenant* Anonymous() {
  static const admission::Tenant* anonymous = [] {
    auto* t = new admission::Tenant();
    t->name = "anonymous";
    t->admin = true;
    return t;
  }();
  return anonymous;
}

absl::StatusOr<const admission::Tenant*> CheckRole(const admission::Tenant* t, Role role) {
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

}  // namespace

absl::StatusOr<const admission::Tenant*> AuthorizeHeaders(const admission::Identity* identity,
                                                          absl::string_view peer,
                                                          absl::string_view authorization,
                                                          absl::string_view x_api_key,
                                                          Role role) {
  if (identity == nullptr) return Anonymous();
  if (auto st = identity->CheckPeer(peer); !st.ok()) return st;
  auto tenant = identity->Authenticate(PresentedKey(authorization, x_api_key));
  if (!tenant.ok()) return tenant.status();
  return CheckRole(*tenant, role);
}

absl::StatusOr<const admission::Tenant*> Authorize(const admission::Identity* identity,
                                                   const grpc::CallbackServerContext* ctx,
                                                   Role role) {
  if (identity == nullptr) return Anonymous();
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
  return CheckRole(t, role);
}

}  // namespace lmgate::services
