// The only Boost.Beast translation unit of the sdk_ws driver.
//
// Everything that touches a socket, a map of calls/channels or a timer runs on the io thread,
// so the per-socket state needs no lock. Each connection attempt gets a new generation number
// and a new Link (stream + read buffer); completion handlers of an older generation find the
// number changed and return without touching anything.
#include "backends/sdk_ws/connection.h"

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backends/backoff.h"
#include "backends/sdk_ws/logging.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"

namespace lmgate::backends::sdk_ws {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

absl::Status ShutDownError() { return absl::UnavailableError("the sdk_ws driver shut down"); }

Clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

// One WebSocket connection attempt and its read buffer, kept alive by the handlers using it.
struct Link {
  explicit Link(net::io_context& ioc) : ws(ioc) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
};

class Socket;

}  // namespace

struct Connection::Impl {
  explicit Impl(Options o) : options(std::move(o)), work(net::make_work_guard(ioc)) {}

  Options options;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::thread thread;
  std::thread::id thread_id;  // of `thread`, set before the Connection is handed out
  std::array<std::shared_ptr<Socket>, kNumNamespaces> sockets;
  std::atomic<bool> stopping{false};
  // Once `closed`, nothing more is posted to `ioc`: the shutdown handler is the last one that
  // callers queued, so everything queued before it runs (and fails) before the io thread ends.
  absl::Mutex post_mu;
  bool closed ABSL_GUARDED_BY(post_mu) = false;
  absl::Mutex join_mu;  // held while joining `thread`
  std::atomic<int64_t> connects_started{0};
  std::atomic<int64_t> connects_succeeded{0};
  std::atomic<int64_t> sockets_lost{0};
};

namespace {

using Impl = Connection::Impl;

struct CallState final : PendingCall, std::enable_shared_from_this<CallState> {
  CallState(std::weak_ptr<Impl> i, RpcRequest r, Connection::RpcCallback d)
      : impl(std::move(i)), request(std::move(r)), done(std::move(d)) {}
  ~CallState() override {
    if (!finished && done) done(ShutDownError());
  }
  void Abort(absl::Status why) override;
  // io thread only.
  void Finish(absl::StatusOr<Json> result) {
    if (finished) return;
    finished = true;
    Connection::RpcCallback cb = std::move(done);
    done = nullptr;
    cb(std::move(result));
  }

  std::weak_ptr<Impl> impl;
  RpcRequest request;
  Connection::RpcCallback done;
  // io thread only:
  bool finished = false;
  int64_t id = -1;
};

struct ChannelState final : Channel, std::enable_shared_from_this<ChannelState> {
  ~ChannelState() override {
    if (!closed && observer) observer->OnClose(ShutDownError());
  }
  void Send(Json message) override;
  void Cancel(absl::Status reason) override;

  std::weak_ptr<Impl> impl;
  Namespace ns = Namespace::kLlm;
  std::string endpoint;
  std::optional<Json> creation;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<ChannelObserver> observer;
  // io thread only:
  bool closed = false;
  int64_t id = -1;
  absl::Status cancel_reason;
  std::unique_ptr<net::steady_timer> timer;
};

class Socket : public std::enable_shared_from_this<Socket> {
 public:
  Socket(Impl& impl, Namespace ns)
      : impl_(impl), ns_(ns), resolver_(impl.ioc), connect_timer_(impl.ioc) {}

  void AddCall(const std::shared_ptr<CallState>& call) {
    if (call->finished) return;  // aborted before it got here
    if (absl::Status s = EnsureConnecting(); !s.ok()) return call->Finish(s);
    call->id = next_call_id_++;
    calls_[call->id] = call;
    Enqueue(EncodeRpcCall(call->id, call->request.endpoint, call->request.parameter));
    call->request.parameter.reset();
  }

  void AbortCall(const std::shared_ptr<CallState>& call, absl::Status why) {
    if (call->finished) return;
    auto it = calls_.find(call->id);
    if (it != calls_.end() && it->second == call) calls_.erase(it);
    call->Finish(std::move(why));
  }

  void AddChannel(const std::shared_ptr<ChannelState>& ch) {
    if (ch->closed) return;
    if (absl::Status s = EnsureConnecting(); !s.ok()) return FinishChannel(ch, s);
    if (absl::Now() >= ch->deadline) {
      return FinishChannel(ch, absl::DeadlineExceededError("the deadline passed before the " +
                                                           ch->endpoint + " channel opened"));
    }
    ch->id = next_channel_id_++;
    channels_[ch->id] = ch;
    Enqueue(EncodeChannelCreate(ch->id, ch->endpoint, ch->creation));
    ch->creation.reset();
    if (!ch->cancel_reason.ok()) {
      SendCancel(ch);
    } else if (ch->deadline != absl::InfiniteFuture()) {
      ArmTimer(ch, ch->deadline - absl::Now(), [](ChannelState& c) {
        return absl::DeadlineExceededError(
            absl::StrCat("the deadline passed during the ", c.endpoint, " channel"));
      });
    }
  }

  void SendOnChannel(const std::shared_ptr<ChannelState>& ch, const Json& message) {
    if (ch->closed || ch->id < 0) return;
    Enqueue(EncodeChannelSend(ch->id, message));
  }

  void CancelChannel(const std::shared_ptr<ChannelState>& ch, absl::Status reason) {
    if (ch->closed || !ch->cancel_reason.ok()) return;
    ch->cancel_reason = reason.ok() ? absl::CancelledError("cancelled") : std::move(reason);
    if (ch->id >= 0) SendCancel(ch);  // else AddChannel sends it right after channelCreate
  }

  void AddConnectWaiter(std::function<void(absl::Status)> waiter) {
    if (state_ == State::kOpen) return waiter(absl::OkStatus());
    if (absl::Status s = EnsureConnecting(); !s.ok()) return waiter(s);
    waiters_.push_back(std::move(waiter));
  }

  void Shutdown() { Drop(ShutDownError()); }

 private:
  enum class State { kIdle, kConnecting, kOpen };

  std::string Where() const {
    return absl::StrCat("ws://", impl_.options.host, ":", impl_.options.port,
                        impl_.options.path_prefix, "/", NamespaceName(ns_));
  }

  // OK when frames may be queued (open or connecting); else why not (shut down, backing off).
  absl::Status EnsureConnecting() {
    if (impl_.stopping) return absl::UnavailableError("the sdk_ws driver is shutting down");
    if (state_ != State::kIdle) return absl::OkStatus();
    Clock::time_point now = Clock::now();
    if (now < retry_at_) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now).count();
      return absl::Status(last_error_.code(), absl::StrCat(last_error_.message(),
                                                           " (next attempt in ", ms, " ms)"));
    }
    StartConnect();
    return absl::OkStatus();
  }

  void StartConnect() {
    state_ = State::kConnecting;
    uint64_t gen = ++gen_;
    ++impl_.connects_started;
    link_ = std::make_shared<Link>(impl_.ioc);
    auto self = shared_from_this();
    connect_timer_.expires_after(ToChrono(impl_.options.connect_timeout));
    connect_timer_.async_wait([self, gen](beast::error_code ec) {
      if (ec || gen != self->gen_ || self->state_ != State::kConnecting) return;
      self->ConnectFailed(absl::UnavailableError(
          absl::StrCat("timed out after ", absl::FormatDuration(self->impl_.options.connect_timeout),
                       " connecting to LM Studio at ", self->Where())));
    });
    resolver_.async_resolve(
        impl_.options.host, std::to_string(impl_.options.port),
        [self, gen, link = link_](beast::error_code ec, tcp::resolver::results_type results) {
          if (gen != self->gen_) return;
          if (ec) return self->ConnectFailed(self->NetError("cannot resolve the host of", ec));
          beast::get_lowest_layer(link->ws).async_connect(
              results, [self, gen, link](beast::error_code ec, const tcp::endpoint&) {
                if (gen != self->gen_) return;
                if (ec) return self->ConnectFailed(self->NetError("cannot connect to", ec));
                self->Handshake(gen, link);
              });
        });
  }

  void Handshake(uint64_t gen, const std::shared_ptr<Link>& link) {
    const Connection::Options& o = impl_.options;
    beast::get_lowest_layer(link->ws).socket().set_option(tcp::no_delay(true));
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = ToChrono(o.connect_timeout);
    timeouts.idle_timeout = ToChrono(o.idle_timeout);
    timeouts.keep_alive_pings = true;
    link->ws.set_option(timeouts);
    link->ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "lmgate"); }));
    link->ws.read_message_max(o.max_message_bytes);
    std::string host = o.host.find(':') != std::string::npos ? absl::StrCat("[", o.host, "]")
                                                             : o.host;
    std::string target = absl::StrCat(o.path_prefix, "/", NamespaceName(ns_));
    auto self = shared_from_this();
    link->ws.async_handshake(
        absl::StrCat(host, ":", o.port), target, [self, gen, link](beast::error_code ec) {
          if (gen != self->gen_) return;
          if (ec) return self->ConnectFailed(self->NetError("WebSocket upgrade refused by", ec));
          link->ws.text(true);
          auto auth = std::make_shared<std::string>(EncodeAuthPacket(self->impl_.options.identity));
          link->ws.async_write(
              net::buffer(*auth), [self, gen, link, auth](beast::error_code ec, size_t) {
                if (gen != self->gen_) return;
                if (ec) return self->ConnectFailed(self->NetError("authentication failed on", ec));
                link->ws.async_read(link->buffer, [self, gen, link](beast::error_code ec, size_t) {
                  if (gen != self->gen_) return;
                  if (ec) return self->ConnectFailed(self->NetError("no authentication reply from", ec));
                  std::string reply = beast::buffers_to_string(link->buffer.data());
                  link->buffer.consume(link->buffer.size());
                  if (absl::Status s = DecodeAuthReply(reply); !s.ok()) {
                    return self->ConnectFailed(s);
                  }
                  self->Opened(gen, link);
                });
              });
        });
  }

  absl::Status NetError(absl::string_view what, const beast::error_code& ec) const {
    return absl::UnavailableError(absl::StrCat(what, " LM Studio at ", Where(), ": ", ec.message()));
  }

  void Opened(uint64_t gen, const std::shared_ptr<Link>& link) {
    state_ = State::kOpen;
    failures_ = 0;
    ++impl_.connects_succeeded;
    connect_timer_.cancel();
    Log().debug("connected to {}", Where());
    std::vector<std::function<void(absl::Status)>> waiters;
    waiters.swap(waiters_);
    for (auto& w : waiters) w(absl::OkStatus());
    Read(gen, link);
    MaybeWrite();
  }

  void ConnectFailed(absl::Status reason) {
    ++failures_;
    // Doubling from initial_backoff up to max_backoff, drawn from [d/2, d].
    const absl::Duration delay = backends::Backoff(
        BackoffPolicy{impl_.options.initial_backoff, impl_.options.max_backoff, 2.0, 0.5},
        failures_ - 1, UnitRandom());
    retry_at_ = Clock::now() + ToChrono(delay);
    last_error_ = reason;
    // Warn once per outage; the retries that follow are debug.
    if (failures_ == 1) {
      Log().warn("{}", std::string(reason.message()));
    } else {
      Log().debug("{} (attempt {})", std::string(reason.message()), failures_);
    }
    Drop(std::move(reason));
  }

  void Lost(absl::Status reason) {
    ++impl_.sockets_lost;
    retry_at_ = Clock::time_point();  // the next call reconnects at once
    Log().warn("{}", std::string(reason.message()));
    Drop(std::move(reason));
  }

  // Closes the link and fails everything that depended on it.
  void Drop(absl::Status reason) {
    ++gen_;
    state_ = State::kIdle;
    connect_timer_.cancel();
    resolver_.cancel();
    if (link_) {
      beast::error_code ignored;
      beast::get_lowest_layer(link_->ws).socket().close(ignored);
      link_.reset();
    }
    queue_.clear();
    writing_ = false;
    next_call_id_ = next_channel_id_ = 0;
    auto calls = std::move(calls_);
    auto channels = std::move(channels_);
    auto waiters = std::move(waiters_);
    calls_.clear();
    channels_.clear();
    waiters_.clear();
    for (auto& [id, call] : calls) call->Finish(reason);
    for (auto& [id, ch] : channels) FinishChannel(ch, reason);
    for (auto& w : waiters) w(reason);
  }

  void Read(uint64_t gen, const std::shared_ptr<Link>& link) {
    auto self = shared_from_this();
    link->ws.async_read(link->buffer, [self, gen, link](beast::error_code ec, size_t) {
      if (gen != self->gen_) return;
      if (ec) {
        std::string why = ec.message();
        if (ec == websocket::error::closed && !link->ws.reason().reason.empty()) {
          why = absl::StrCat("closed by the host: ", std::string(link->ws.reason().reason.c_str()));
        }
        return self->Lost(absl::UnavailableError(
            absl::StrCat("lost the connection to LM Studio at ", self->Where(), ": ", why)));
      }
      std::string frame = beast::buffers_to_string(link->buffer.data());
      link->buffer.consume(link->buffer.size());
      self->Dispatch(frame);
      if (gen == self->gen_) self->Read(gen, link);
    });
  }

  void Dispatch(absl::string_view frame) {
    absl::StatusOr<ServerMessage> msg = DecodeServerMessage(frame);
    if (!msg.ok()) {
      Log().warn("ignoring a malformed frame from {}: {}", Where(), std::string(msg.status().message()));
      return;
    }
    using T = ServerMessage::Type;
    switch (msg->type) {
      case T::kRpcResult:
      case T::kRpcError: {
        auto it = calls_.find(msg->id);
        if (it == calls_.end()) return;  // aborted locally; the answer is late
        std::shared_ptr<CallState> call = std::move(it->second);
        calls_.erase(it);
        if (msg->type == T::kRpcResult) {
          call->Finish(std::move(msg->payload));
        } else {
          call->Finish(std::move(msg->status));
        }
        return;
      }
      case T::kChannelSend: {
        auto it = channels_.find(msg->id);
        if (it == channels_.end()) return;
        std::shared_ptr<ChannelState> ch = it->second;
        if (!ch->closed) ch->observer->OnMessage(msg->payload, ch->cancel_reason);
        return;
      }
      case T::kChannelClose:
      case T::kChannelError: {
        auto it = channels_.find(msg->id);
        if (it == channels_.end()) return;
        std::shared_ptr<ChannelState> ch = std::move(it->second);
        channels_.erase(it);
        FinishChannel(ch, msg->type == T::kChannelClose ? absl::OkStatus() : msg->status);
        return;
      }
      case T::kKeepAlive:
        Enqueue(EncodeKeepAliveAck());
        return;
      case T::kCommunicationWarning:
        Log().warn("communication warning from {}: {}", Where(), msg->text);
        return;
      case T::kChannelAck:
      case T::kKeepAliveAck:
      case T::kOther:
        return;
    }
  }

  void FinishChannel(const std::shared_ptr<ChannelState>& ch, absl::Status status) {
    if (ch->closed) return;
    ch->closed = true;
    ch->timer.reset();
    std::shared_ptr<ChannelObserver> observer = std::move(ch->observer);
    ch->observer = nullptr;
    observer->OnClose(ch->cancel_reason.ok() ? std::move(status) : ch->cancel_reason);
  }

  void SendCancel(const std::shared_ptr<ChannelState>& ch) {
    Enqueue(EncodeChannelSend(ch->id, Json{{"type", "cancel"}}));
    ArmTimer(ch, impl_.options.cancel_grace, [](ChannelState& c) { return c.cancel_reason; });
  }

  // On expiry: a live channel is cancelled (no cancel sent yet) or failed locally (after the
  // grace period) with the status `why` produces.
  template <typename Why>
  void ArmTimer(const std::shared_ptr<ChannelState>& ch, absl::Duration after, Why why) {
    ch->timer = std::make_unique<net::steady_timer>(impl_.ioc);
    ch->timer->expires_after(ToChrono(std::max(after, absl::ZeroDuration())));
    std::weak_ptr<ChannelState> weak = ch;
    ch->timer->async_wait([self = shared_from_this(), weak, why](beast::error_code ec) {
      std::shared_ptr<ChannelState> c = weak.lock();
      if (ec || c == nullptr || c->closed) return;
      if (c->cancel_reason.ok()) return self->CancelChannel(c, why(*c));
      auto it = self->channels_.find(c->id);
      if (it != self->channels_.end() && it->second == c) self->channels_.erase(it);
      Log().warn("the host did not end the cancelled {} channel within {}; dropping it",
                 c->endpoint, absl::FormatDuration(self->impl_.options.cancel_grace));
      self->FinishChannel(c, c->cancel_reason);
    });
  }

  void Enqueue(std::string frame) {
    queue_.push_back(std::make_shared<const std::string>(std::move(frame)));
    MaybeWrite();
  }

  // Beast allows one async_write in flight: frames go out one after another from the queue.
  void MaybeWrite() {
    if (writing_ || state_ != State::kOpen || queue_.empty()) return;
    writing_ = true;
    std::shared_ptr<const std::string> frame = queue_.front();
    auto self = shared_from_this();
    link_->ws.async_write(net::buffer(*frame),
                          [self, gen = gen_, link = link_, frame](beast::error_code ec, size_t) {
                            if (gen != self->gen_) return;
                            self->writing_ = false;
                            if (ec) {
                              return self->Lost(self->NetError("cannot write to", ec));
                            }
                            self->queue_.pop_front();
                            self->MaybeWrite();
                          });
  }

  Impl& impl_;
  const Namespace ns_;
  tcp::resolver resolver_;
  net::steady_timer connect_timer_;

  State state_ = State::kIdle;
  uint64_t gen_ = 0;
  std::shared_ptr<Link> link_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  int64_t next_call_id_ = 0;
  int64_t next_channel_id_ = 0;
  std::map<int64_t, std::shared_ptr<CallState>> calls_;
  std::map<int64_t, std::shared_ptr<ChannelState>> channels_;
  std::vector<std::function<void(absl::Status)>> waiters_;
  int failures_ = 0;
  Clock::time_point retry_at_;
  absl::Status last_error_;
};

// Runs `fn(socket)` on the io thread if the Connection still exists and is not shut down;
// returns false (and drops `fn`) if not.
template <typename Fn>
bool OnIoThread(const std::weak_ptr<Impl>& weak, Namespace ns, Fn fn) {
  std::shared_ptr<Impl> impl = weak.lock();
  if (impl == nullptr) return false;
  Socket* socket = impl->sockets[static_cast<int>(ns)].get();
  absl::MutexLock lock(&impl->post_mu);
  if (impl->closed) return false;
  net::post(impl->ioc, [socket, fn = std::move(fn)]() mutable { fn(*socket); });
  return true;
}

void CallState::Abort(absl::Status why) {
  OnIoThread(impl, request.ns, [self = shared_from_this(), why = std::move(why)](Socket& s) mutable {
    s.AbortCall(self, std::move(why));
  });
}

void ChannelState::Send(Json message) {
  OnIoThread(impl, ns, [self = shared_from_this(), message = std::move(message)](Socket& s) {
    s.SendOnChannel(self, message);
  });
}

void ChannelState::Cancel(absl::Status reason) {
  OnIoThread(impl, ns, [self = shared_from_this(), reason = std::move(reason)](Socket& s) mutable {
    s.CancelChannel(self, std::move(reason));
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Create(Options options) {
  if (options.host.empty()) return absl::InvalidArgumentError("the LM Studio host name is empty");
  if (options.port <= 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad LM Studio port ", options.port));
  }
  auto impl = std::make_shared<Impl>(std::move(options));
  for (int i = 0; i < kNumNamespaces; ++i) {
    impl->sockets[i] = std::make_shared<Socket>(*impl, static_cast<Namespace>(i));
  }
  impl->thread = std::thread([raw = impl.get()] { raw->ioc.run(); });
  impl->thread_id = impl->thread.get_id();
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

Connection::Connection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() {
  if (std::this_thread::get_id() == impl_->thread_id) {
    // Destroyed from one of its own callbacks (a contract violation): the io thread cannot join
    // itself, and the callers up its stack still use the sockets. Shut down and leak the state.
    Log().error("the sdk_ws connection was destroyed on its own io thread; leaking it");
    StopPosting();
    impl_->thread.detach();
    new std::shared_ptr<Impl>(std::move(impl_));
    return;
  }
  Shutdown();
}

void Connection::StopPosting() {
  absl::MutexLock lock(&impl_->post_mu);
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->stopping = true;
  net::post(impl_->ioc, [impl = impl_.get()] {
    for (auto& socket : impl->sockets) socket->Shutdown();
    impl->ioc.stop();
  });
}

void Connection::Shutdown() {
  if (std::this_thread::get_id() == impl_->thread_id) {
    Log().error("sdk_ws Connection::Shutdown called on its own io thread; ignored");
    return;
  }
  StopPosting();
  absl::MutexLock lock(&impl_->join_mu);
  if (!impl_->thread.joinable()) return;
  impl_->thread.join();
  // Handlers the io thread queued for itself after the shutdown handler (e.g. a call started
  // from inside a callback) did not run: run them now, here, so they fail (`stopping`) before
  // Shutdown() returns instead of when the io_context is destroyed, on whatever thread that is.
  impl_->ioc.restart();
  impl_->ioc.poll();
}

std::shared_ptr<PendingCall> Connection::StartCall(RpcRequest request, RpcCallback done) {
  Namespace ns = request.ns;
  auto call = std::make_shared<CallState>(impl_, std::move(request), std::move(done));
  // Not posted: no other thread knows the call, so it may finish here.
  if (!OnIoThread(impl_, ns, [call](Socket& s) { s.AddCall(call); })) call->Finish(ShutDownError());
  return call;
}

std::shared_ptr<Channel> Connection::OpenChannel(Namespace ns, std::string endpoint,
                                                 Json creation_parameter, absl::Time deadline,
                                                 std::shared_ptr<ChannelObserver> observer) {
  auto ch = std::make_shared<ChannelState>();
  ch->impl = impl_;
  ch->ns = ns;
  ch->endpoint = std::move(endpoint);
  ch->creation = std::move(creation_parameter);
  ch->deadline = deadline;
  ch->observer = std::move(observer);
  if (!OnIoThread(impl_, ns, [ch](Socket& s) { s.AddChannel(ch); })) {
    // Not posted: no other thread knows the channel, so it may close here.
    ch->closed = true;
    std::shared_ptr<ChannelObserver> o = std::move(ch->observer);
    ch->observer = nullptr;
    o->OnClose(ShutDownError());
  }
  return ch;
}

absl::Status Connection::Connect(Namespace ns, absl::Time deadline) {
  struct Shared {
    absl::Mutex mu;
    std::optional<absl::Status> status ABSL_GUARDED_BY(mu);
  };
  auto shared = std::make_shared<Shared>();
  const bool posted = OnIoThread(impl_, ns, [shared](Socket& s) {
    s.AddConnectWaiter([shared](absl::Status status) {
      absl::MutexLock lock(&shared->mu);
      if (!shared->status.has_value()) shared->status = std::move(status);
    });
  });
  if (!posted) return ShutDownError();
  absl::MutexLock lock(&shared->mu);
  auto done = [&shared]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
    return shared->status.has_value();
  };
  if (!shared->mu.AwaitWithDeadline(absl::Condition(&done), deadline)) {
    return absl::DeadlineExceededError("the deadline passed while connecting to LM Studio");
  }
  return *shared->status;
}

ConnectionStats Connection::stats() const {
  ConnectionStats s;
  s.connects_started = impl_->connects_started;
  s.connects_succeeded = impl_->connects_succeeded;
  s.sockets_lost = impl_->sockets_lost;
  return s;
}

}  // namespace lmgate::backends::sdk_ws
