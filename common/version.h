// lmgate's version: the one constant every binary and RPC reports (GetServerInfo, lmgatectl,
// /metrics lmgate_build_info{version,commit}). Bump it here and in deploy/helm/lmgate/Chart.yaml
// (appVersion) only. The commit is "unknown": the offline Bazel 4 build does not stamp cc
// targets (a linkstamp would re-link every binary on every commit).
#ifndef LMGATE_COMMON_VERSION_H_
#define LMGATE_COMMON_VERSION_H_

namespace lmgate {

inline constexpr char kLmgateVersion[] = "0.1.0";
inline constexpr char kLmgateCommit[] = "unknown";

}  // namespace lmgate

#endif  // LMGATE_COMMON_VERSION_H_
