// Helpers shared by the HTTP client tests.
#ifndef LMGATE_TESTS_BACKENDS_HTTP_CLIENT_TEST_UTIL_H_
#define LMGATE_TESTS_BACKENDS_HTTP_CLIENT_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backends/http/client.h"

namespace lmgate::backends::http::testing {

// Collects one stream's callbacks; thread-safe.
class StreamRecorder {
 public:
  StreamCallbacks Callbacks() {
    StreamCallbacks cb;
    cb.on_chunk = [this](absl::string_view bytes) {
      absl::MutexLock lock(&mu_);
      body_.append(bytes.data(), bytes.size());
      ++chunks_;
    };
    cb.on_done = [this](absl::Status status, HttpResponse response) {
      {
        absl::MutexLock lock(&mu_);
        status_ = std::move(status);
        response_ = std::move(response);
        ++done_calls_;
      }
      done_.Notify();
    };
    return cb;
  }
  // Waits until `needle` arrived through on_chunk.
  bool WaitForBody(const std::string& needle, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto has = [this, &needle]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return body_.find(needle) != std::string::npos;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&has), timeout);
  }
  bool WaitDone(absl::Duration timeout = absl::Seconds(10)) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::string body() {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  HttpResponse response() {
    absl::MutexLock lock(&mu_);
    return response_;
  }
  int done_calls() {
    absl::MutexLock lock(&mu_);
    return done_calls_;
  }

 private:
  absl::Mutex mu_;
  std::string body_ ABSL_GUARDED_BY(mu_);
  int chunks_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  HttpResponse response_ ABSL_GUARDED_BY(mu_);
  int done_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification done_;
};

inline std::unique_ptr<HttpClient> MakeClient(const std::string& base_url,
                                              HttpClient::Options options = {}) {
  options.base_url = base_url;
  auto client = HttpClient::Create(std::move(options));
  return client.ok() ? std::move(*client) : nullptr;
}

}  // namespace lmgate::backends::http::testing

#endif  // LMGATE_TESTS_BACKENDS_HTTP_CLIENT_TEST_UTIL_H_
