// Fuzz target: the /metrics endpoint (services/metrics). The HTTP request parser is civetweb's
// (Debian's libcivetweb, under prometheus-cpp's Exposer), configured by lmgate (request cap,
// timeouts, threads); what lmgate owns is the Registry → prometheus::MetricFamily → text path, whose
// label values come from callers (tenant names, model keys, methods). Both are fed here.
//
// Input: up to the first '\n\n' (or all of it), label values and a number for a counter, a gauge
// and a histogram; the rest is sent as raw bytes to a live endpoint on 127.0.0.1:0. Checks:
//   - Render() is well formed: every line is "# HELP|TYPE ..." or "name{...} value", each series
//     is one line (label values escaped, never a raw newline), histograms end with le="+Inf";
//   - the endpoint answers every input with an HTTP status line (civetweb echoes a malformed
//     version token: "HTTP//1.0 505 ...") or closes, and still serves a
//     correct scrape afterwards (no wedged worker, no crash).
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/metrics/metrics.h"

namespace metrics = lmgate::metrics;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "metrics_http_fuzzer: invariant violated: %s\n", what);
  std::abort();
}

struct Endpoint {
  metrics::Registry registry;
  std::unique_ptr<metrics::MetricsServer> server;
};

Endpoint& TheEndpoint() {
  static Endpoint* e = [] {
    auto* ep = new Endpoint();
    metrics::ServerOptions o;
    o.max_connections = 2;
    o.timeout = absl::Milliseconds(200);  // an input without a complete request costs this
    auto s = metrics::MetricsServer::Start("127.0.0.1:0", &ep->registry, o);
    Check(s.ok(), "metrics server does not start");
    ep->server = *std::move(s);
    return ep;
  }();
  return *e;
}

// Sends `bytes`, half-closes, reads the answer until the server closes (bounded by a timeout).
std::string Exchange(int port, absl::string_view bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  Check(fd >= 0, "socket");
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's -timeout runs a SIGALRM timer: a blocking call may end with EINTR, which is the
  // harness's doing, not the server's.
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  while (rc != 0 && (errno == EINTR || errno == EALREADY));
  Check(rc == 0 || errno == EISCONN, "connect");
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // the server may close early (a request over the cap)
    off += static_cast<size_t>(w);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, n);
  }
  close(fd);
  return out;
}

void CheckRendered(const std::string& text) {
  Check(text.empty() || text.back() == '\n', "render does not end with a newline");
  int inf_buckets = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# HELP ") || absl::StartsWith(line, "# TYPE ")) continue;
    if (!absl::StartsWith(line, "fuzz_")) {
      std::fprintf(stderr, "line: %.*s\n", static_cast<int>(line.size()), line.data());
      Check(false, "a line that is not a sample of a fuzz_ family");
    }
    Check(line.find(' ') != absl::string_view::npos, "a sample line without a value");
    if (absl::StrContains(line, "le=\"+Inf\"")) ++inf_buckets;
  }
  Check(inf_buckets == 1, "the histogram series lacks its one +Inf bucket");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n\n");
  const absl::string_view labels = split == absl::string_view::npos ? input : input.substr(0, split);
  const absl::string_view request =
      split == absl::string_view::npos ? absl::string_view() : input.substr(split + 2);

  // Our part, on a registry of its own: three series whose label values come from the input.
  {
    metrics::Registry r;
    const std::vector<std::string> v = absl::StrSplit(labels, '\n');
    const std::string a = v.size() > 0 ? v[0] : "", b = v.size() > 1 ? v[1] : "";
    double x = static_cast<double>(labels.size()) - 32;
    if (labels.size() >= 8) std::memcpy(&x, labels.data(), sizeof(x));  // any double, NaN too
    r.Describe("fuzz_histogram_seconds", "histogram", "help with \\ and\nnewline");
    r.CounterAdd("fuzz_requests_total", {{"tenant", a}, {"model", b}}, 1);
    r.GaugeSet("fuzz_depth", {{"model", b}}, x);
    r.Observe("fuzz_histogram_seconds", {{"method", a}}, x);
    CheckRendered(r.Render());
  }

  Endpoint& ep = TheEndpoint();
  const int port = ep.server->port();
  if (!request.empty()) {
    const std::string answer = Exchange(port, request);
    // civetweb echoes the request's version token in a 505 ("HTTP//1.0 505 HTTP Version not
    // supported"), so only the "HTTP/" prefix is certain.
    if (!answer.empty() && !absl::StartsWith(answer, "HTTP/")) {
      std::fprintf(stderr, "answer: %.200s\n", answer.c_str());
      Check(false, "an answer without a status line");
    }
  }
  const std::string scrape = Exchange(port, "GET /metrics HTTP/1.0\r\n\r\n");
  if (!absl::StartsWith(scrape, "HTTP/1.0 200 ") && !absl::StartsWith(scrape, "HTTP/1.1 200 "))
    std::fprintf(stderr, "scrape (%zu bytes, errno %d %s): %.300s\n", scrape.size(), errno,
                 std::strerror(errno), scrape.c_str());
  Check(absl::StartsWith(scrape, "HTTP/1.0 200 ") || absl::StartsWith(scrape, "HTTP/1.1 200 "),
        "the endpoint no longer serves a scrape");
  return 0;
}
