// RAII owners for libcurl's C handles. Every CURL*, CURLM* and curl_slist* in lmgate lives in one
// of these; nothing calls curl_*_cleanup by hand.
//
// Thread-compatible: a handle belongs to one thread at a time (libcurl's own rule). Only
// curl_multi_wakeup() may be called on a CurlMulti from another thread.
#ifndef LMGATE_BACKENDS_HTTP_CURL_HANDLES_H_
#define LMGATE_BACKENDS_HTTP_CURL_HANDLES_H_

#include <curl/curl.h>

#include <memory>
#include <string>

namespace lmgate::backends::http {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
// An easy handle. Must be removed from any multi handle before it is destroyed.
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlMultiDeleter {
  void operator()(CURLM* handle) const { curl_multi_cleanup(handle); }
};
// A multi handle. Every easy handle must be removed from it before it is destroyed.
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;

// A header list for CURLOPT_HTTPHEADER. Must outlive the transfer that uses it.
class CurlSlist {
 public:
  CurlSlist() = default;
  CurlSlist(const CurlSlist&) = delete;
  CurlSlist& operator=(const CurlSlist&) = delete;
  CurlSlist(CurlSlist&& other) noexcept : list_(other.list_) { other.list_ = nullptr; }
  CurlSlist& operator=(CurlSlist&& other) noexcept {
    if (this != &other) {
      curl_slist_free_all(list_);
      list_ = other.list_;
      other.list_ = nullptr;
    }
    return *this;
  }
  ~CurlSlist() { curl_slist_free_all(list_); }

  // False if libcurl could not allocate (the list is unchanged then).
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_, line.c_str());
    if (next == nullptr) return false;
    list_ = next;
    return true;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// curl_global_init(CURL_GLOBAL_DEFAULT) exactly once per process; thread-safe. Returns the
// result of that one call.
CURLcode EnsureCurlGlobalInit();

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_CURL_HANDLES_H_
