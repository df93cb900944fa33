// Who is calling: API key from request metadata → tenant, checked against the method's role,
// and the client-address allowlist (the gateway checks the model). Denials never reach the host.
#ifndef LMGATE_SERVICES_AUTH_H_
#define LMGATE_SERVICES_AUTH_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "services/admission/identity.h"

namespace lmgate::services {

enum class Role { kInference, kAdmin };

// Reads `authorization: Bearer <key>` or `x-api-key: <key>`; checks the peer allowlist, the key
// and the role. UNAUTHENTICATED / PERMISSION_DENIED with a message a person can act on.
// `identity` may be null (no keys, no allowlist: the anonymous tenant). Models are checked by the
// gateway (Gateway::CheckTenantModel), against the model key a name resolves to: an instance
// identifier as sent says nothing about the model behind it.
absl::StatusOr<const admission::Tenant*> Authorize(const admission::Identity* identity,
                                                   const grpc::CallbackServerContext* ctx,
                                                   Role role);
// The same for a caller known by its address (`peer` as gRPC writes it, "ipv4:1.2.3.4:5") and
// its `authorization` / `x-api-key` header values ("" = absent): the HTTP ingress.
absl::StatusOr<const admission::Tenant*> AuthorizeHeaders(const admission::Identity* identity,
                                                          absl::string_view peer,
                                                          absl::string_view authorization,
                                                          absl::string_view x_api_key,
                                                          Role role);

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_AUTH_H_
