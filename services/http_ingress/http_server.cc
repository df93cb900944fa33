// The only translation unit of the ingress that includes Beast.
#include "services/http_ingress/http_server.h"

#include <deque>
#include <map>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lmgate::http_ingress {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// What Exchanges and connections share with the server, and may outlive it with: the count of
// answers in progress (Stop waits on it) and the gate that stops calls into the I/O context once
// the server is stopping.
struct ServerShared {
  absl::Mutex mu;
  int active ABSL_GUARDED_BY(mu) = 0;
  // Reader-held by every call from outside into the I/O context; Stop() closes it (writer).
  absl::Mutex gate;
  bool open ABSL_GUARDED_BY(gate) = true;
};

namespace {

std::string PeerString(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v4()) return absl::StrCat("ipv4:", addr.to_string(), ":", ep.port());
  return absl::StrCat("ipv6:%5B", addr.to_string(), "%5D:", ep.port());
}

std::string Head(int status, const std::string& content_type, const Headers& headers,
                 std::optional<size_t> content_length, bool close) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
  if (!content_type.empty()) absl::StrAppend(&out, "Content-Type: ", content_type, "\r\n");
  if (content_length) {
    absl::StrAppend(&out, "Content-Length: ", *content_length, "\r\n");
  } else {
    absl::StrAppend(&out, "Transfer-Encoding: chunked\r\n");
  }
  if (close) absl::StrAppend(&out, "Connection: close\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, "\r\n");
  return out;
}

}  // namespace

absl::string_view ReasonPhrase(int status) {
  const auto r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return absl::string_view(r.data(), r.size());
}

absl::string_view HttpRequest::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::shared_ptr<std::atomic<int>> connections;
  std::shared_ptr<std::atomic<int>> active_count;
  std::shared_ptr<ServerShared> shared = std::make_shared<ServerShared>();
  std::atomic<bool> stopping{false};
  absl::Mutex conns_mu;
  std::map<Connection*, std::weak_ptr<Connection>> conns ABSL_GUARDED_BY(conns_mu);

  void Accept();
};

// One client connection, served on its own strand: read a request, hand it to the handler,
// write its answer (one exchange at a time), and again while keep-alive holds.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server), shared_(server->shared),
        connections_(server->connections), active_count_(server->active_count) {
    connections_->fetch_add(1);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = PeerString(ep);
  }
  ~Connection() { connections_->fetch_sub(1); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadNext(true); });
  }

  // Called from any thread through an Exchange (under the shared gate).
  void Post(std::function<void(Connection*)> fn) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), fn = std::move(fn)] { fn(self.get()); });
  }
  std::atomic<size_t>& pending() { return pending_; }
  size_t max_pending() const { return server_->options.max_pending_bytes; }

  // On the strand.
  void Send(std::string data, bool last) {
    if (closed_) return;
    pending_ += data.size();
    out_.push_back(std::move(data));
    if (last) ending_ = true;
    if (!writing_) WriteFront();
  }
  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    EndExchange(/*closed=*/true);
    absl::MutexLock lock(&server_->conns_mu);
    server_->conns.erase(this);
  }
  void CloseIfIdle() {
    if (exchange_ == nullptr) Close();
  }

 private:
  void ReadNext(bool first) {
    if (closed_) return;
    if (server_->stopping.load() && !first) return Close();
    if (buffer_.size() > 0) return ReadHeader();
    stream_.expires_after(
        absl::ToChronoNanoseconds(first ? server_->options.read_timeout
                                        : server_->options.idle_timeout));
    stream_.async_read_some(
        buffer_.prepare(8192), [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) return self->Close();
          self->buffer_.commit(n);
          self->ReadHeader();
        });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    // The whole request (headers and body) must arrive within read_timeout of its first byte.
    stream_.expires_after(absl::ToChronoNanoseconds(server_->options.read_timeout));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return ReadFailed(ec);
    const auto& req = parser_->get();
    int fields = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++fields;
    if (fields > server_->options.max_headers) {
      return Refuse(431, absl::StrCat("the request has ", fields,
                                      " header fields; at most ", server_->options.max_headers,
                                      " are accepted (config http.max_headers)"));
    }
    if (absl::EqualsIgnoreCase(std::string(req[bhttp::field::expect]), "100-continue") &&
        !parser_->is_done()) {
      continue_ = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(continue_),
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->Close();
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->ReadFailed(ec);
                        self->Dispatch();
                      });
  }

  void ReadFailed(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      return Refuse(431, absl::StrCat("the request line and headers exceed ",
                                      server_->options.max_header_bytes,
                                      " bytes (config http.max_header_bytes)"));
    }
    if (ec == bhttp::error::body_limit) {
      return Refuse(413, absl::StrCat("the request body exceeds ",
                                      server_->options.max_body_bytes,
                                      " bytes (config http.max_body_bytes)"));
    }
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
        ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset) {
      return Close();  // a slow, idle or vanished client: nobody to answer
    }
    Refuse(400, absl::StrCat("malformed HTTP request: ", ec.message()));
  }

  // Answers a request that cannot be read further and closes the connection after it.
  void Refuse(int status, const std::string& message) {
    std::string body = absl::StrCat(R"({"error":{"message":")", message,
                                    R"(","type":"invalid_request_error","param":null,"code":null}})");
    keep_alive_ = false;
    stream_.expires_never();
    Send(Head(status, "application/json", {}, body.size(), /*close=*/true) + body, true);
  }

  void Dispatch() {
    auto req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    absl::string_view target(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != absl::string_view::npos) {
      r.query = std::string(target.substr(q + 1));
      target = target.substr(0, q);
    }
    r.path = std::string(target);
    for (const auto& f : req) {
      r.headers.emplace_back(absl::AsciiStrToLower(std::string(f.name_string())),
                             std::string(f.value()));
    }
    r.body = std::move(req.body());
    r.peer = peer_;
    exchange_ = std::make_shared<Exchange>(std::move(r), weak_from_this(), shared_);
    {
      absl::MutexLock lock(&shared_->mu);
      ++shared_->active;
    }
    active_count_->fetch_add(1);
    // A read stays posted while the answer is produced: it is how a client that went away is
    // seen (and its upstream prediction cancelled) before anything is written to it.
    stream_.expires_never();
    Watch();
    server_->handler(exchange_);
  }

  void Watch() {
    if (watching_ || closed_ || buffer_.size() > server_->options.max_header_bytes) return;
    watching_ = true;
    stream_.async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->watching_ = false;
          if (ec == net::error::operation_aborted && self->exchange_ == nullptr && !self->closed_) {
            return self->ReadNext(false);  // cancelled by EndExchange: the next request
          }
          if (ec) return self->Close();
          self->buffer_.commit(n);  // a pipelined request: kept for after this answer
          if (self->exchange_ != nullptr) return self->Watch();
          self->ReadNext(false);
        });
  }

  void WriteFront() {
    if (out_.empty()) {
      if (ending_) {
        ending_ = false;
        EndExchange(/*closed=*/false);
        if (!keep_alive_ || server_->stopping.load()) return Close();
        if (watching_) {
          beast::error_code ec;
          stream_.socket().cancel(ec);  // the watch's handler goes on reading
        } else {
          ReadNext(false);
        }
      }
      return;
    }
    writing_ = true;
    stream_.expires_after(absl::ToChronoNanoseconds(server_->options.write_stall));
    net::async_write(stream_, net::buffer(out_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) return self->Close();  // includes a reader stalled too long
                       self->pending_ -= self->out_.front().size();
                       self->out_.pop_front();
                       self->WriteFront();
                     });
  }

  void EndExchange(bool closed) {
    if (exchange_ == nullptr) return;
    auto ex = std::move(exchange_);
    exchange_ = nullptr;
    if (closed) ex->Closed();
    active_count_->fetch_sub(1);
    absl::MutexLock lock(&shared_->mu);
    --shared_->active;
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* const server_;  // outlives every connection's strand work (Stop joins)
  const std::shared_ptr<ServerShared> shared_;
  const std::shared_ptr<std::atomic<int>> connections_;
  const std::shared_ptr<std::atomic<int>> active_count_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string continue_;
  std::shared_ptr<Exchange> exchange_;
  std::deque<std::string> out_;
  std::atomic<size_t> pending_{0};
  bool writing_ = false;
  bool watching_ = false;
  bool ending_ = false;  // the answer's last bytes are queued
  bool keep_alive_ = true;
  bool closed_ = false;
};

namespace {

// Runs `fn` on the connection's strand unless the server stopped; false if it did not post.
bool PostTo(const std::weak_ptr<Connection>& weak, const std::shared_ptr<ServerShared>& shared,
            std::function<void(Connection*)> fn) {
  absl::ReaderMutexLock lock(&shared->gate);
  if (!shared->open) return false;
  auto conn = weak.lock();
  if (!conn) return false;
  conn->Post(std::move(fn));
  return true;
}

}  // namespace

Exchange::Exchange(HttpRequest request, std::weak_ptr<Connection> conn,
                   std::shared_ptr<ServerShared> shared)
    : request_(std::move(request)), conn_(std::move(conn)), shared_(std::move(shared)) {}

Exchange::~Exchange() = default;

void Exchange::Respond(HttpResponse response) {
  if (finished_.exchange(true)) return;
  PostTo(conn_, shared_, [r = std::move(response)](Connection* c) mutable {
    std::string bytes = Head(r.status, r.content_type, r.headers, r.body.size(), false);
    bytes += r.body;
    c->Send(std::move(bytes), /*last=*/true);
  });
}

void Exchange::StartStream(int status, const std::string& content_type, Headers headers) {
  if (finished_.load()) return;
  PostTo(conn_, shared_,
         [status, content_type, headers = std::move(headers)](Connection* c) {
           c->Send(Head(status, content_type, headers, std::nullopt, false), false);
         });
}

bool Exchange::Write(std::string data) {
  if (finished_.load() || data.empty()) return !finished_.load();
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
  }
  auto conn = conn_.lock();
  if (!conn) return false;
  if (conn->pending().load() + data.size() > conn->max_pending()) {
    // The client reads too slowly to keep up: give up on it (OnClose cancels the producer).
    PostTo(conn_, shared_, [](Connection* c) { c->Close(); });
    return false;
  }
  std::string chunk = absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
  return PostTo(conn_, shared_,
                [chunk = std::move(chunk)](Connection* c) mutable {
                  c->Send(std::move(chunk), false);
                });
}

void Exchange::EndStream() {
  if (finished_.exchange(true)) return;
  PostTo(conn_, shared_, [](Connection* c) { c->Send("0\r\n\r\n", /*last=*/true); });
}

void Exchange::SetOnClose(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      on_close_ = std::move(fn);
      return;
    }
  }
  fn();
}

void Exchange::Closed() {
  std::function<void()> fn;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    fn = std::move(on_close_);
  }
  if (fn && !finished_.load()) fn();
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      if (stopping.load() || connections->load() >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over http.max_connections: refused at once
      } else {
        auto conn = std::make_shared<Connection>(std::move(socket), this);
        {
          absl::MutexLock lock(&conns_mu);
          conns[conn.get()] = conn;
        }
        conn->Start();
      }
    }
    Accept();
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                               Handler handler) {
  if (options.threads < 1) return absl::InvalidArgumentError("http.threads must be >= 1");
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.options = options;
  impl.handler = std::move(handler);
  impl.connections = s->connections_;
  impl.active_count = s->active_;
  const std::string& listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen: \"", listen, "\" is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "::";
  beast::error_code ec;
  tcp::resolver resolver(impl.ioc);
  auto results = resolver.resolve(host, std::to_string(port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen: cannot resolve \"", host, "\": ", ec.message()));
  }
  const tcp::endpoint ep = results.begin()->endpoint();
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec && ep.address().is_v6()) impl.acceptor.set_option(net::ip::v6_only(false), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (http_listen): ", ec.message()));
  }
  s->port_ = impl.acceptor.local_endpoint().port();
  return s;
}

void HttpServer::Start() {
  Impl& impl = *impl_;
  impl.work.emplace(net::make_work_guard(impl.ioc));
  impl.Accept();
  for (int i = 0; i < impl.options.threads; ++i) {
    impl.threads.emplace_back([&impl] { impl.ioc.run(); });
  }
}

void HttpServer::StopAccepting() {
  Impl& impl = *impl_;
  if (impl.stopping.exchange(true)) return;
  net::post(impl.ioc, [&impl] {
    beast::error_code ec;
    impl.acceptor.close(ec);
  });
  std::vector<std::shared_ptr<Connection>> conns;
  {
    absl::MutexLock lock(&impl.conns_mu);
    for (auto& [raw, weak] : impl.conns) {
      if (auto c = weak.lock()) conns.push_back(std::move(c));
    }
  }
  for (auto& c : conns) c->Post([](Connection* c) { c->CloseIfIdle(); });
}

void HttpServer::Stop(absl::Time deadline) {
  Impl& impl = *impl_;
  if (impl.threads.empty()) return;
  StopAccepting();
  {
    ServerShared& sh = *impl.shared;
    absl::MutexLock lock(&sh.mu);
    auto idle = [&sh]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sh.mu) { return sh.active == 0; };
    sh.mu.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }
  {
    absl::MutexLock lock(&impl.shared->gate);
    impl.shared->open = false;  // from now on Exchanges post nothing
  }
  std::vector<std::shared_ptr<Connection>> conns;
  {
    absl::MutexLock lock(&impl.conns_mu);
    for (auto& [raw, weak] : impl.conns) {
      if (auto c = weak.lock()) conns.push_back(std::move(c));
    }
  }
  for (auto& c : conns) c->Post([](Connection* c) { c->Close(); });
  conns.clear();
  impl.work.reset();
  for (auto& t : impl.threads) t.join();
  impl.threads.clear();
}

HttpServer::~HttpServer() {
  if (impl_) Stop(absl::Now());
}

}  // namespace lmgate::http_ingress
