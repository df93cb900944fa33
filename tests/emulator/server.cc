// Boost.Beast front end. The only translation unit of the emulator library that includes Beast.
#include "tests/emulator/server.h"

#include <deque>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace lmgate::emulator {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr const char* kNamespaces[] = {"llm",   "embedding", "system",  "diagnostics",
                                       "files", "repository", "plugins", "runtime"};

class Closable {
 public:
  virtual ~Closable() = default;
  virtual void ForceClose() = 0;  // any thread
};

// Open connections, so Restart/Close can drop them. Thread-safe.
class Registry {
 public:
  uint64_t Add(std::weak_ptr<Closable> c) {
    absl::MutexLock l(&mu_);
    conns_[next_] = std::move(c);
    return next_++;
  }
  void Remove(uint64_t id) {
    absl::MutexLock l(&mu_);
    conns_.erase(id);
  }
  std::vector<std::shared_ptr<Closable>> All() {
    absl::MutexLock l(&mu_);
    std::vector<std::shared_ptr<Closable>> out;
    for (auto& [id, w] : conns_) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, std::weak_ptr<Closable>> conns_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Context {
  Host* host;
  SdkAuthenticator* auth;
  HttpApi* api;
  SdkServerInfo info;
  Registry* registry;
  FrameLog* frames;
};

Headers HeadersOf(const http::request<http::string_body>& req) {
  Headers out;
  for (const auto& field : req) {
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

// ------------------------------------------------------------------ WebSocket

constexpr uint64_t kMaxWsMessageBytes = 100 * 1024 * 1024;

class WsSession : public Closable, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, Context ctx, std::string ns)
      : ws_(std::move(socket)), auth_timer_(ws_.get_executor()), ctx_(ctx), ns_(std::move(ns)) {}

  void Start(http::request<http::string_body> req) {
    req_ = std::move(req);
    id_ = ctx_.registry->Add(weak_from_this());
    ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30),
                                                   websocket::stream_base::none(), false});
    // LM Studio's server is the `ws` package with its default maxPayload of 100 MiB
    // (lms-communication-server WsServer); Beast's default (16 MiB) cut off big prompts.
    ws_.read_message_max(kMaxWsMessageBytes);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "lmstudio-emulator");
    }));
    ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) { self->OnAccept(ec); });
  }

  // Any thread.
  void Send(std::string frame) {
    net::post(ws_.get_executor(), [self = shared_from_this(), f = std::move(frame)]() mutable {
      if (self->closed_ || self->closing_ || self->dropping_) return;
      self->outq_.push_back(std::move(f));
      if (!self->writing_) self->WriteNext();
    });
  }
  void CloseGracefully() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (!self->writing_ && self->outq_.empty()) self->DoClose();
    });
  }
  void ForceClose() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] { self->Abort(); });
  }
  // Fault injection: the frames queued so far still go out, then the TCP connection is cut
  // without a close frame.
  void DropAfterDrain() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->dropping_ = true;
      if (!self->writing_ && self->outq_.empty()) self->Abort();
    });
  }

 private:
  class Transport : public SdkTransport {
   public:
    explicit Transport(std::weak_ptr<WsSession> s) : s_(std::move(s)) {}
    void Send(std::string frame) override {
      if (auto s = s_.lock()) s->Send(std::move(frame));
    }
    void Close(bool abrupt) override {
      if (auto s = s_.lock()) abrupt ? s->DropAfterDrain() : s->CloseGracefully();
    }

   private:
    std::weak_ptr<WsSession> s_;
  };

  void OnAccept(beast::error_code ec) {
    if (ec) return Finish();
    if (ctx_.frames != nullptr) ctx_.frames->RecordWsOpen(ns_, HeadersOf(req_));
    session_ = std::make_shared<SdkSession>(ctx_.host, ctx_.auth, ctx_.info, ns_,
                                            std::make_shared<Transport>(weak_from_this()),
                                            ctx_.frames);
    // Like the reference AuthenticatedWsServer: no valid auth packet within 10 s → closed.
    auth_timer_.expires_after(std::chrono::seconds(10));
    auth_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->session_->authenticated()) self->CloseGracefully();
    });
    DoRead();
  }
  void DoRead() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Finish();
      std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->session_->OnMessage(text);
      self->DoRead();
    });
  }
  void WriteNext() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(outq_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      if (self->closed_) return;  // Abort() owns the queue now
                      if (ec) return self->Abort();
                      self->outq_.pop_front();
                      if (!self->outq_.empty()) {
                        self->WriteNext();
                      } else if (self->dropping_) {
                        self->Abort();
                      } else if (self->closing_) {
                        self->DoClose();
                      }
                    });
  }
  void DoClose() {
    if (closed_) return;
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this()](beast::error_code) { self->Abort(); });
  }
  void Abort() {
    if (closed_) return;
    closed_ = true;
    if (!writing_) outq_.clear();  // an in-flight write still references the front buffer
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
    Finish();
  }
  void Finish() {
    if (finished_) return;
    finished_ = true;
    closed_ = true;
    auth_timer_.cancel();
    if (session_ != nullptr) session_->OnClose();
    ctx_.registry->Remove(id_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer auth_timer_;
  Context ctx_;
  const std::string ns_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  std::shared_ptr<SdkSession> session_;
  std::deque<std::string> outq_;
  uint64_t id_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool dropping_ = false;
  bool closed_ = false;
  bool finished_ = false;
};

// ------------------------------------------------------------------ HTTP

class HttpSession : public Closable, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Context ctx) : stream_(std::move(socket)), ctx_(ctx) {}

  void Start() {
    id_ = ctx_.registry->Add(weak_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }
  void ForceClose() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(true); });
  }

  // ---- called through Responder, any thread; `gen` ties the call to one request.
  void Post(std::function<void(HttpSession&)> fn) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), fn = std::move(fn)] { fn(*self); });
  }
  void DoRespond(uint64_t gen, int status, const std::string& ctype, std::string body) {
    if (closed_ || gen != gen_ || response_started_) return;
    response_started_ = true;
    http::response<http::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(status));
    res.set(http::field::server, "lmstudio-emulator");
    res.set(http::field::content_type, ctype);
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    std::ostringstream os;
    os << res;
    Queue(os.str(), /*ends_response=*/true);
  }
  void DoStartStream(uint64_t gen, const std::string& ctype) {
    if (closed_ || gen != gen_ || response_started_) return;
    response_started_ = true;
    streaming_ = true;
    Queue(absl::StrCat("HTTP/1.1 200 OK\r\nServer: lmstudio-emulator\r\nContent-Type: ", ctype,
                       "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: ",
                       keep_alive_ ? "keep-alive" : "close", "\r\n\r\n"),
          false);
  }
  void DoChunk(uint64_t gen, const std::string& data) {
    if (closed_ || gen != gen_ || !streaming_ || data.empty()) return;
    std::ostringstream size;
    size << std::hex << data.size();
    Queue(absl::StrCat(size.str(), "\r\n", data, "\r\n"), false);
  }
  void DoEnd(uint64_t gen) {
    if (closed_ || gen != gen_ || !streaming_) return;
    streaming_ = false;
    Queue("0\r\n\r\n", true);
  }
  // Fault injection: what was queued still goes out, then the connection is cut.
  void DoDrop(uint64_t gen) {
    if (gen != gen_ || closed_) return;
    dropping_ = true;
    if (!writing_ && outq_.empty()) Close(true);
  }

 private:
  void DoRead() {
    if (closed_) return;
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close(false);
    http::request<http::string_body> req = parser_->release();
    if (websocket::is_upgrade(req)) {
      std::string path(req.target());
      path = path.substr(0, path.find('?'));
      for (const char* ns : kNamespaces) {
        if (path == absl::StrCat("/", ns)) {
          closed_ = true;  // the socket now belongs to the WebSocket session
          ctx_.registry->Remove(id_);
          std::make_shared<WsSession>(stream_.release_socket(), ctx_, ns)->Start(std::move(req));
          return;
        }
      }
    }
    ++gen_;
    keep_alive_ = req.keep_alive();
    in_flight_ = true;
    response_started_ = false;
    HttpRequest hr;
    hr.method = std::string(req.method_string());
    hr.target = std::string(req.target());
    hr.authorization = std::string(req[http::field::authorization]);
    hr.body = std::move(req.body());
    hr.headers = HeadersOf(req);
    HttpHandleResult r = ctx_.api->Handle(hr, std::make_shared<Responder>(shared_from_this(), gen_));
    job_ = std::move(r.job);
    after_response_ = std::move(r.after_response);
    StartMonitor();
  }

  // Keeps one read pending while a request is handled: EOF means the client went away (cancel its
  // work); bytes mean the next request is arriving.
  void StartMonitor() {
    if (monitor_pending_ || closed_) return;
    monitor_pending_ = true;
    stream_.socket().async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->monitor_pending_ = false;
          if (ec) return self->Close(true);
          self->buffer_.commit(n);
          // While a response is in flight, pipelined bytes stop the monitoring (they are parsed
          // after the response); otherwise they start the next request.
          if (!self->in_flight_) self->DoRead();
        });
  }

  void Queue(std::string data, bool ends_response) {
    if (dropping_) return;
    outq_.push_back(std::move(data));
    if (ends_response) response_queued_ = true;
    if (!writing_) WriteNext();
  }
  void WriteNext() {
    writing_ = true;
    net::async_write(stream_, net::buffer(outq_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) return self->Close(true);
                       self->outq_.pop_front();
                       if (!self->outq_.empty() && !self->closed_) return self->WriteNext();
                       if (self->dropping_) return self->Close(true);
                       // Also when the client hung up right after reading the response: the
                       // after-response action (e.g. a restart) must still run.
                       if (self->outq_.empty() && self->response_queued_) self->OnResponseComplete();
                     });
  }
  void OnResponseComplete() {
    response_queued_ = false;
    in_flight_ = false;
    job_.reset();
    if (after_response_) {
      auto fn = std::move(after_response_);
      after_response_ = nullptr;
      fn();
    }
    if (closed_) return;
    if (!keep_alive_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return Close(false);
    }
    if (!monitor_pending_) {
      if (buffer_.size() > 0) {
        DoRead();
      } else {
        StartMonitor();
      }
    }
  }
  void Close(bool cancel_work) {
    if (closed_) return;
    closed_ = true;
    if (cancel_work && in_flight_ && job_ != nullptr) ctx_.host->Cancel(*job_);
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    ctx_.registry->Remove(id_);
  }

  class Responder : public HttpResponder {
   public:
    Responder(std::shared_ptr<HttpSession> s, uint64_t gen) : s_(std::move(s)), gen_(gen) {}
    void Respond(int status, const std::string& ctype, std::string body) override {
      s_->Post([g = gen_, status, ctype, b = std::move(body)](HttpSession& s) mutable {
        s.DoRespond(g, status, ctype, std::move(b));
      });
    }
    void StartStream(const std::string& ctype) override {
      s_->Post([g = gen_, ctype](HttpSession& s) { s.DoStartStream(g, ctype); });
    }
    void WriteChunk(std::string data) override {
      s_->Post([g = gen_, d = std::move(data)](HttpSession& s) { s.DoChunk(g, d); });
    }
    void EndStream() override {
      s_->Post([g = gen_](HttpSession& s) { s.DoEnd(g); });
    }
    void Drop() override {
      s_->Post([g = gen_](HttpSession& s) { s.DoDrop(g); });
    }

   private:
    std::shared_ptr<HttpSession> s_;
    const uint64_t gen_;
  };

  beast::tcp_stream stream_;
  Context ctx_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> outq_;
  std::shared_ptr<Job> job_;
  std::function<void()> after_response_;
  uint64_t id_ = 0;
  uint64_t gen_ = 0;
  bool keep_alive_ = true;
  bool in_flight_ = false;
  bool monitor_pending_ = false;
  bool response_started_ = false;
  bool response_queued_ = false;
  bool streaming_ = false;
  bool writing_ = false;
  bool dropping_ = false;
  bool closed_ = false;
};

}  // namespace

// ------------------------------------------------------------------ listener

struct Server::Impl {
  Impl(const ServerOptions& o, Context c)
      : options(o), ctx(c), ioc(std::max(1, o.io_threads)), strand(net::make_strand(ioc)),
        acceptor(strand), restart_timer(strand) {
    ctx.registry = &registry;
  }

  absl::Status Listen() {
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      beast::error_code ignored;
      acceptor.close(ignored);
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.host, ":",
                                                 endpoint.port(), ": ", ec.message()));
    }
    endpoint = acceptor.local_endpoint();
    return absl::OkStatus();
  }

  void DoAccept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (acceptor.is_open() && ec != net::error::operation_aborted) DoAccept();
        return;
      }
      beast::error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      std::make_shared<HttpSession>(std::move(s), ctx)->Start();
      DoAccept();
    });
  }

  void Reopen(int attempts_left) {
    if (stopped) return;
    absl::Status s = Listen();
    if (s.ok()) return DoAccept();
    if (attempts_left <= 0) {
      spdlog::error("emulator: giving up re-listening: {}", s.ToString());
      return;
    }
    restart_timer.expires_after(std::chrono::milliseconds(20));
    restart_timer.async_wait([this, attempts_left](beast::error_code ec) {
      if (!ec) Reopen(attempts_left - 1);
    });
  }

  void CloseAll() {
    for (auto& c : registry.All()) c->ForceClose();
  }

  ServerOptions options;
  Context ctx;
  Registry registry;  // before ioc: pending handlers that die with ioc unregister from it
  net::io_context ioc;
  net::strand<net::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  net::steady_timer restart_timer;
  tcp::endpoint endpoint;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  bool stopped = false;  // strand-confined
  absl::Mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options, Host* host,
                                                       SdkAuthenticator* auth, HttpApi* api) {
  auto impl = std::make_unique<Impl>(
      options, Context{host, auth, api, options.sdk_info, nullptr, options.frames});
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad host ", options.host));
  impl->endpoint = tcp::endpoint(address, static_cast<unsigned short>(options.port));
  absl::Status s = impl->Listen();
  if (!s.ok()) return s;
  impl->work.emplace(net::make_work_guard(impl->ioc));
  Impl* raw = impl.get();
  net::post(impl->strand, [raw] { raw->DoAccept(); });
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->threads.emplace_back([raw] { raw->ioc.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

int Server::port() const { return impl_->endpoint.port(); }

void Server::Restart(int64_t ms, bool drop_existing) {
  Impl* impl = impl_.get();
  net::post(impl->strand, [impl, ms, drop_existing] {
    if (impl->stopped) return;
    beast::error_code ec;
    impl->acceptor.close(ec);
    if (drop_existing) impl->CloseAll();
    impl->restart_timer.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, ms)));
    impl->restart_timer.async_wait([impl](beast::error_code ec) {
      if (!ec) impl->Reopen(/*attempts_left=*/50);
    });
  });
}

void Server::Close() {
  {
    absl::MutexLock l(&impl_->mu);
    if (impl_->closed) return;
    impl_->closed = true;
  }
  std::promise<void> done;
  Impl* impl = impl_.get();
  net::post(impl->strand, [impl, &done] {
    impl->stopped = true;
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->restart_timer.cancel();
    done.set_value();
  });
  done.get_future().wait();
  impl->CloseAll();
}

void Server::Shutdown() {
  Close();
  {
    absl::MutexLock l(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
}

}  // namespace lmgate::emulator
