// lmgate's version: the one constant every binary and RPC reports (GetServerInfo, lmgatectl
// --version, build info). Bump it here only.
#ifndef LMGATE_COMMON_VERSION_H_
#define LMGATE_COMMON_VERSION_H_

namespace lmgate {

inline constexpr char kLmgateVersion[] = "0.9.0";

}  // namespace lmgate

#endif  // LMGATE_COMMON_VERSION_H_
