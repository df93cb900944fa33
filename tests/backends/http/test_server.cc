#include "tests/backends/http/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lmgate::backends::http::testing {
namespace {

bool SendAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

void TestConnection::Respond(int status, absl::string_view content_type, absl::string_view body) {
  answered_ = true;
  SendAll(fd_, absl::StrCat("HTTP/1.1 ", status, " ", Reason(status),
                            "\r\nContent-Type: ", content_type,
                            "\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
}

void TestConnection::StartChunked(int status, absl::string_view content_type) {
  answered_ = true;
  SendAll(fd_, absl::StrCat("HTTP/1.1 ", status, " ", Reason(status),
                            "\r\nContent-Type: ", content_type,
                            "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"));
}

bool TestConnection::WriteChunk(absl::string_view data) {
  if (data.empty()) return true;
  return SendAll(fd_, absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n"));
}

void TestConnection::EndChunked() { SendAll(fd_, "0\r\n\r\n"); }

bool TestConnection::WriteRaw(absl::string_view bytes) {
  answered_ = true;
  return SendAll(fd_, bytes);
}

void TestConnection::Abort() {
  aborted_ = true;
  ::shutdown(fd_, SHUT_RDWR);
}

bool TestConnection::WaitForPeerClose(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    int rc = ::poll(&p, 1, left);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);  // discards pipelined bytes, if any
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
  }
}

TestServer::TestServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 512) != 0) {
    std::abort();
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

TestServer::~TestServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

std::string TestServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::vector<TestRequest> TestServer::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

void TestServer::AcceptLoop() {
  while (!stopping_) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int index = ++connections_;
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    fds_.push_back(fd);
    threads_.emplace_back([this, fd, index] { Serve(fd, index); });
  }
}

void TestServer::Serve(int fd, int index) {
  std::string buffer;
  char chunk[8192];
  bool open = true;
  while (open && !stopping_) {
    size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open = false;
        break;
      }
      buffer.append(chunk, static_cast<size_t>(n));
    }
    if (!open) break;
    TestRequest request;
    request.connection = index;
    std::vector<std::string> lines =
        absl::StrSplit(absl::string_view(buffer).substr(0, header_end), "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() >= 2) {
      request.method = first[0];
      request.path = first[1];
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      request.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t body_len = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
      (void)absl::SimpleAtoi(it->second, &body_len);
    }
    buffer.erase(0, header_end + 4);
    while (buffer.size() < body_len) {
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open = false;
        break;
      }
      buffer.append(chunk, static_cast<size_t>(n));
    }
    if (!open) break;
    request.body = buffer.substr(0, body_len);
    buffer.erase(0, body_len);
    ++requests_;
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(request);
    }
    TestConnection connection(fd);
    handler_(request, connection);
    if (!connection.answered() || connection.aborted()) open = false;
  }
  ::shutdown(fd, SHUT_RDWR);
  // The fd is closed only here, after the handler is done with it; fds_ keeps the number
  // reserved until the server goes away, so the destructor never shuts down a reused fd.
  absl::MutexLock lock(&mu_);
  ::close(fd);
  for (int& f : fds_) {
    if (f == fd) f = -1;
  }
}

}  // namespace lmgate::backends::http::testing
