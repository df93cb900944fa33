// lmgate's version and the commit it was built from, as /metrics reports them
// (lmgate_build_info{version,commit}). The commit is "unknown": the offline Bazel 4 build does
// not stamp cc targets (a linkstamp would re-link every binary on every commit).
#ifndef LMGATE_SERVICES_VERSION_H_
#define LMGATE_SERVICES_VERSION_H_

namespace lmgate {

inline constexpr char kVersion[] = "0.1.0";  // deploy/helm/lmgate/Chart.yaml appVersion
inline constexpr char kCommit[] = "unknown";

}  // namespace lmgate

#endif  // LMGATE_SERVICES_VERSION_H_
