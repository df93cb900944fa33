// Test time scale: tests that wait for something to happen, or that need a short window to
// stay open (a TTL, a deadline), multiply their durations by LMGATE_TEST_TIME_SCALE (default 1,
// never below 1). Sanitizer configs set it (.bazelrc `test:tsan`), because instrumented binaries
// run several times slower and a 40 ms TTL or a 10 s wait that is generous at full speed is not
// there. It only ever stretches time; no test becomes laxer about what it checks.
#ifndef LMGATE_TESTS_UTIL_TIME_SCALE_H_
#define LMGATE_TESTS_UTIL_TIME_SCALE_H_

#include <cstdlib>

#include "absl/time/time.h"

namespace lmgate::testutil {

inline double TimeScale() {
  static const double scale = [] {
    const char* s = std::getenv("LMGATE_TEST_TIME_SCALE");
    if (s == nullptr || *s == '\0') return 1.0;
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    return (end != s && v >= 1.0 && v <= 1000.0) ? v : 1.0;
  }();
  return scale;
}

// `d` stretched by the time scale.
inline absl::Duration Scaled(absl::Duration d) { return d * TimeScale(); }

// True in an ASan build (--config=asan). Its allocator keeps freed blocks in a quarantine
// (256 MB by default) and pads every allocation, so RSS bounds measure ASan, not lmgate: tests
// assert them only when this is false.
inline constexpr bool kAddressSanitizer =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

}  // namespace lmgate::testutil

#endif  // LMGATE_TESTS_UTIL_TIME_SCALE_H_
