#include "backends/http/url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lmgate::backends::http {
namespace {

std::string Bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
}

}  // namespace

std::string HostUrl::HostPort() const { return absl::StrCat(Bracketed(host), ":", port); }

std::string HostUrl::HttpBase() const {
  return absl::StrCat(scheme, "://", HostPort(), prefix);
}

std::string HostUrl::WsBase() const {
  return absl::StrCat(scheme == "https" ? "wss" : "ws", "://", HostPort(), prefix);
}

absl::StatusOr<HostUrl> ParseHostUrl(absl::string_view input) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid LM Studio URL \"", input, "\": ", why,
                     " (expected e.g. http://127.0.0.1:1234)"));
  };
  absl::string_view s = absl::StripAsciiWhitespace(input);
  if (s.empty()) return bad("empty");
  HostUrl url;
  size_t scheme_end = s.find("://");
  if (scheme_end == absl::string_view::npos) {
    url.scheme = "http";
  } else {
    std::string scheme = absl::AsciiStrToLower(s.substr(0, scheme_end));
    s.remove_prefix(scheme_end + 3);
    if (scheme == "http" || scheme == "ws") {
      url.scheme = "http";
    } else if (scheme == "https" || scheme == "wss") {
      url.scheme = "https";
    } else {
      return bad(absl::StrCat("unsupported scheme \"", scheme, "\""));
    }
  }
  if (s.find_first_of("?#") != absl::string_view::npos) return bad("query or fragment not allowed");
  size_t path_start = s.find('/');
  absl::string_view authority = s.substr(0, path_start);
  absl::string_view path =
      path_start == absl::string_view::npos ? absl::string_view() : s.substr(path_start);
  if (authority.find('@') != absl::string_view::npos) return bad("user info not allowed");
  if (authority.empty()) return bad("missing host");

  absl::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    absl::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("garbage after IPv6 address");
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != absl::string_view::npos) {
      url.host = std::string(authority.substr(0, colon));
      port_text = authority.substr(colon + 1);
    } else {
      url.host = std::string(authority);
    }
  }
  if (url.host.empty()) return bad("missing host");
  if (port_text.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
    // A bare "host" without scheme or port is most likely LM Studio's default port.
    if (scheme_end == absl::string_view::npos) url.port = 1234;
  } else if (!absl::SimpleAtoi(port_text, &url.port) || url.port <= 0 || url.port > 65535) {
    return bad(absl::StrCat("bad port \"", port_text, "\""));
  }

  std::string p(path);
  while (!p.empty() && p.back() == '/') p.pop_back();
  for (absl::string_view suffix : {"/api/v0", "/api/v1", "/v1"}) {
    if (absl::EndsWith(p, suffix)) {
      p.resize(p.size() - suffix.size());
      break;
    }
  }
  while (!p.empty() && p.back() == '/') p.pop_back();
  url.prefix = p;
  return url;
}

}  // namespace lmgate::backends::http
