#include "tests/backends/sdk_ws/fake_host.h"

#include <deque>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"

namespace lmgate::backends::sdk_ws::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

}  // namespace

struct FakeHost::Impl {
  Impl(Script s, AuthCheck a)
      : work(net::make_work_guard(ioc)), acceptor(ioc), script(std::move(s)), auth(std::move(a)) {}

  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  tcp::acceptor acceptor;
  std::thread thread;
  Script script;
  AuthCheck auth;
  int port = 0;

  mutable absl::Mutex mu;
  int authenticated ABSL_GUARDED_BY(mu) = 0;
  int attempts ABSL_GUARDED_BY(mu) = 0;
  std::vector<Json> received ABSL_GUARDED_BY(mu);
  std::vector<std::weak_ptr<Session>> sessions;  // io thread only

  void Accept();
};

namespace {

class Session final : public FakeSession, public std::enable_shared_from_this<Session> {
 public:
  Session(FakeHost::Impl& host, tcp::socket socket) : host_(host), ws_(std::move(socket)) {
    beast::error_code ignored;
    ws_.next_layer().set_option(tcp::no_delay(true), ignored);
  }

  void Start() {
    auto self = shared_from_this();
    http::async_read(ws_.next_layer(), buffer_, request_, [self](beast::error_code ec, size_t) {
      if (ec) return;
      self->path_ = std::string(self->request_.target());
      self->ws_.async_accept(self->request_, [self](beast::error_code ec) {
        if (ec) return;
        self->ws_.text(true);
        self->Read();
      });
    });
  }

  void Send(const Json& frame) override { SendRaw(frame.dump()); }
  void SendRaw(std::string text) override {
    net::post(host_.ioc, [self = shared_from_this(), text = std::move(text)]() mutable {
      self->Enqueue(std::move(text));
    });
  }
  void Drop() override {
    net::post(host_.ioc, [self = shared_from_this()] { self->DropNow(); });
  }
  const std::string& path() const override { return path_; }

  void DropNow() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    ws_.next_layer().close(ignored);
  }

 private:
  void Read() {
    auto self = shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec || self->closed_) return;
      std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->OnFrame(text);
      if (!self->closed_) self->Read();
    });
  }

  void OnFrame(const std::string& text) {
    Json frame = Json::parse(text, nullptr, false);
    if (!authenticated_) {
      std::optional<std::string> rejection;
      {
        absl::MutexLock lock(&host_.mu);
        ++host_.attempts;
      }
      if (host_.auth) rejection = host_.auth(frame);
      if (rejection.has_value()) {
        Enqueue(Json{{"success", false}, {"error", *rejection}}.dump());
        close_after_flush_ = true;
        return;
      }
      authenticated_ = true;
      {
        absl::MutexLock lock(&host_.mu);
        ++host_.authenticated;
      }
      host_.sessions.push_back(shared_from_this());
      Enqueue(R"({"success":true})");
      return;
    }
    {
      absl::MutexLock lock(&host_.mu);
      host_.received.push_back(frame);
    }
    host_.script(shared_from_this(), frame);
  }

  void Enqueue(std::string text) {
    if (closed_) return;
    queue_.push_back(std::move(text));
    Write();
  }

  void Write() {
    if (writing_ || closed_) return;
    if (queue_.empty()) {
      if (close_after_flush_) {
        closed_ = true;
        ws_.async_close(websocket::close_code::normal,
                        [self = shared_from_this()](beast::error_code) {});
      }
      return;
    }
    writing_ = true;
    ws_.async_write(net::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec,
                                                                             size_t) {
      self->writing_ = false;
      if (ec) return;
      self->queue_.pop_front();
      self->Write();
    });
  }

  FakeHost::Impl& host_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::string path_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool closed_ = false;
  bool authenticated_ = false;
  bool close_after_flush_ = false;
};

}  // namespace

void FakeHost::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<Session>(*this, std::move(socket))->Start();
    Accept();
  });
}

FakeHost::FakeHost(Script script, AuthCheck auth)
    : impl_(std::make_shared<Impl>(std::move(script), std::move(auth))) {
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

FakeHost::~FakeHost() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    for (auto& weak : impl->sessions) {
      if (auto s = weak.lock()) s->DropNow();
    }
    impl->ioc.stop();
  });
  impl_->thread.join();
}

int FakeHost::port() const { return impl_->port; }
std::string FakeHost::base_url() const { return "http://127.0.0.1:" + std::to_string(port()); }

int FakeHost::authenticated_total() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->authenticated;
}

int FakeHost::auth_attempts() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->attempts;
}

std::vector<Json> FakeHost::received() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->received;
}

void FakeHost::DropAll() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    for (auto& weak : impl->sessions) {
      if (auto s = weak.lock()) s->DropNow();
    }
  });
}

Json RpcResult(const Json& call, std::optional<Json> result) {
  Json frame = {{"type", "rpcResult"}, {"callId", call["callId"]}};
  if (result.has_value()) frame["result"] = *result;
  return frame;
}

static Json SerializedError(const std::string& title, const std::string& code) {
  Json error = {{"title", title}, {"rootTitle", title}};
  if (!code.empty()) error["displayData"] = Json{{"code", code}};
  return error;
}

Json RpcError(const Json& call, const std::string& title, const std::string& code) {
  return {{"type", "rpcError"}, {"callId", call["callId"]}, {"error", SerializedError(title, code)}};
}

Json ChannelSend(const Json& create, Json message) {
  return {{"type", "channelSend"}, {"channelId", create["channelId"]}, {"message", std::move(message)}};
}

Json ChannelClose(const Json& create) {
  return {{"type", "channelClose"}, {"channelId", create["channelId"]}};
}

Json ChannelError(const Json& create, const std::string& title, const std::string& code) {
  return {{"type", "channelError"},
          {"channelId", create["channelId"]},
          {"error", SerializedError(title, code)}};
}

Json Fragment(const std::string& content, const std::string& reasoning) {
  return {{"type", "fragment"},
          {"fragment", {{"content", content}, {"tokensCount", 1}, {"containsDrafted", false},
                        {"reasoningType", reasoning}, {"isStructural", false}}}};
}

Json PredictSuccess(const std::string& stop_reason, int predicted_tokens) {
  return {{"type", "success"},
          {"stats", {{"stopReason", stop_reason}, {"tokensPerSecond", 50.0},
                     {"timeToFirstTokenSec", 0.01}, {"promptTokensCount", 5},
                     {"predictedTokensCount", predicted_tokens},
                     {"totalTokensCount", 5 + predicted_tokens}}},
          {"modelInfo", Json::object()},
          {"loadModelConfig", {{"fields", Json::array()}}},
          {"predictionConfig", {{"fields", Json::array()}}}};
}

}  // namespace lmgate::backends::sdk_ws::testing
