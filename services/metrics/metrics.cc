#include "services/metrics/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace lmgate::metrics {
namespace {

const std::vector<double> kSecondsBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                             30,     60,    120};

std::string LabelKey(const Labels& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) {
    std::string escaped = absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
    parts.push_back(absl::StrCat(k, "=\"", escaped, "\""));
  }
  return absl::StrJoin(parts, ",");
}

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrCat(v);
}

std::string WithLabel(const std::string& key, const std::string& extra) {
  if (key.empty()) return "{" + extra + "}";
  return "{" + key + "," + extra + "}";
}

}  // namespace

Registry::Family& Registry::FamilyLocked(const std::string& name, const char* type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    if (it->second.type == "histogram") it->second.bounds = kSecondsBuckets;
  }
  return it->second;
}

void Registry::Describe(const std::string& name, const std::string& type, const std::string& help,
                        std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.bounds = type == "histogram" ? (buckets.empty() ? kSecondsBuckets : std::move(buckets))
                                 : std::vector<double>{};
}

void Registry::CounterAdd(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, "counter").series[LabelKey(labels)].value += v;
}

void Registry::GaugeSet(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, "gauge").series[LabelKey(labels)].value = v;
}

void Registry::GaugeReplace(const std::string& name,
                            const std::vector<std::pair<Labels, double>>& series) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, "gauge");
  f.series.clear();
  for (const auto& [labels, v] : series) f.series[LabelKey(labels)].value = v;
}

void Registry::Observe(const std::string& name, const Labels& labels, double v) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, "histogram");
  Series& s = f.series[LabelKey(labels)];
  if (s.buckets.empty()) s.buckets.assign(f.bounds.size(), 0);
  for (size_t i = 0; i < f.bounds.size(); ++i) {
    if (v <= f.bounds[i]) ++s.buckets[i];
  }
  s.sum += v;
  ++s.count;
}

void Registry::AddCollector(std::function<void(Registry&)> fn) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(fn));
}

std::string Registry::Render() {
  std::vector<std::function<void(Registry&)>> collectors;
  {
    absl::MutexLock lock(&mu_);
    collectors = collectors_;
  }
  for (auto& c : collectors) c(*this);
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", f.type, "\n");
    for (const auto& [key, s] : f.series) {
      if (f.type != "histogram") {
        absl::StrAppend(&out, name, key.empty() ? "" : "{" + key + "}", " ", Num(s.value), "\n");
        continue;
      }
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        absl::StrAppend(&out, name, "_bucket", WithLabel(key, "le=\"" + Num(f.bounds[i]) + "\""),
                        " ", s.buckets[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", WithLabel(key, "le=\"+Inf\""), " ", s.count, "\n");
      absl::StrAppend(&out, name, "_sum", key.empty() ? "" : "{" + key + "}", " ", Num(s.sum),
                      "\n");
      absl::StrAppend(&out, name, "_count", key.empty() ? "" : "{" + key + "}", " ", s.count,
                      "\n");
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    Registry* registry) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("metrics listen \"", listen,
                                                   "\" is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints,
                  &res) != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("metrics: cannot resolve ", host));
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->registry_ = registry;
  s->fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok = s->fd_ >= 0 && bind(s->fd_, res->ai_addr, res->ai_addrlen) == 0 &&
                  ::listen(s->fd_, 64) == 0;
  freeaddrinfo(res);
  if (!ok) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen, ": ",
                                               std::strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(s->fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (pipe2(s->wake_, O_CLOEXEC) != 0) return absl::InternalError("metrics: pipe failed");
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (wake_[1] >= 0) {
    char c = 0;
    (void)!write(wake_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : {fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MetricsServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[2048];
    ssize_t n = recv(c, buf, sizeof(buf) - 1, 0);
    std::string req = n > 0 ? std::string(buf, n) : "";
    std::string status = "200 OK", body, type = "text/plain; version=0.0.4";
    if (req.rfind("GET /metrics", 0) == 0 || req.rfind("GET / ", 0) == 0) {
      body = registry_->Render();
    } else if (req.rfind("GET /healthz", 0) == 0) {
      body = "ok\n";
    } else {
      status = "404 Not Found";
      body = "try /metrics\n";
    }
    std::string resp = absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", type,
                                    "\r\nContent-Length: ", body.size(),
                                    "\r\nConnection: close\r\n\r\n", body);
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t w = send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    close(c);
  }
}

}  // namespace lmgate::metrics
