// Base-URL normalisation for every driver. Users paste whatever URL they have for LM Studio:
// "http://h:1234", "h:1234", ".../v1", ".../api/v0", ".../api/v1", with or without a trailing
// slash. All of them name the same host; drivers append their own paths.
#ifndef LMGATE_BACKENDS_HTTP_URL_H_
#define LMGATE_BACKENDS_HTTP_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lmgate::backends::http {

struct HostUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // hostname or IP (IPv6 without brackets)
  int port = 0;        // explicit or the scheme default
  // Path prefix in front of LM Studio's own paths (reverse proxies), without trailing slash;
  // usually "".
  std::string prefix;

  // "http://host:port" + prefix, no trailing slash.
  std::string HttpBase() const;
  // "ws://host:port" + prefix (wss for https), no trailing slash.
  std::string WsBase() const;
  // "host:port" (brackets around IPv6).
  std::string HostPort() const;
};

// Accepts http(s):// and ws(s):// URLs and bare "host:port"; strips a trailing "/", "/v1",
// "/api/v0" or "/api/v1" (and a trailing slash after them). INVALID_ARGUMENT with the reason for
// anything else (unknown scheme, bad port, query string, userinfo).
absl::StatusOr<HostUrl> ParseHostUrl(absl::string_view url);

}  // namespace lmgate::backends::http

#endif  // LMGATE_BACKENDS_HTTP_URL_H_
