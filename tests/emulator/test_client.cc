#include "tests/emulator/test_client.h"

#include <curl/curl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "tests/util/time_scale.h"

namespace lmgate::emulator::testing {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

struct WriteCtx {
  std::string* body;
  const std::function<bool(const std::string&)>* on_data;
};

size_t OnWrite(char* ptr, size_t size, size_t n, void* user) {
  auto* ctx = static_cast<WriteCtx*>(user);
  std::string piece(ptr, size * n);
  ctx->body->append(piece);
  if (ctx->on_data != nullptr && !(*ctx->on_data)(piece)) return 0;  // abort the transfer
  return size * n;
}

}  // namespace

HttpClient::HttpClient(int port) : port_(port), curl_(curl_easy_init()) {}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResult HttpClient::Get(const std::string& path, const std::string& bearer) {
  return Perform("GET", path, "", bearer, nullptr);
}

HttpResult HttpClient::Post(const std::string& path, const json& body, const std::string& bearer) {
  return Perform("POST", path, body.dump(), bearer, nullptr);
}

HttpResult HttpClient::PostText(const std::string& path, const std::string& body) {
  return Perform("POST", path, body, "", nullptr);
}

HttpResult HttpClient::PostStream(const std::string& path, const json& body,
                                  const std::function<bool(const std::string&)>& on_data) {
  return Perform("POST", path, body.dump(), "", &on_data);
}

HttpResult HttpClient::Perform(const std::string& method, const std::string& path,
                               const std::string& body, const std::string& bearer,
                               const std::function<bool(const std::string&)>* on_data) {
  CURL* c = static_cast<CURL*>(curl_);
  HttpResult r;
  WriteCtx ctx{&r.body, on_data};
  const std::string url = absl::StrCat("http://127.0.0.1:", port_, path);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string auth = absl::StrCat("Authorization: Bearer ", bearer);
  if (!bearer.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.new_connections);
  }
  if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR) r.status = -static_cast<long>(rc);
  return r;
}

std::vector<json> ParseSse(const std::string& body) {
  std::vector<json> out;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    json ev = {{"event", ""}};
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) ev["event"] = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) {
        json d = json::parse(std::string(line), nullptr, false);
        ev["data"] = d.is_discarded() ? json(std::string(line)) : d;
      }
    }
    if (ev.contains("data")) out.push_back(std::move(ev));
  }
  return out;
}

// Beast streams are not thread-safe: a synchronous read in one thread and a write in another race
// on the stream's state (the read also answers pings and closes by writing). Every operation on
// the stream therefore runs on the one thread that runs `ioc`; Send() and Drop() post there and
// wait.
struct WsClient::Impl {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;  // the pending read's; only touched on the ioc thread
};

namespace {

// Runs `fn` on the io_context thread and waits for it.
template <typename Fn>
void RunOnIoThread(net::io_context& ioc, Fn fn) {
  absl::Notification done;
  net::post(ioc, [&] {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

}  // namespace

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  ReadNext();  // queued on ioc; runs once the thread below runs it
  reader_ = std::thread([this] { impl_->ioc.run(); });
}

absl::StatusOr<std::unique_ptr<WsClient>> WsClient::Connect(int port, const std::string& ns) {
  auto impl = std::make_unique<Impl>();
  beast::error_code ec;
  impl->ws.next_layer().connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
  if (!ec) impl->ws.handshake(absl::StrCat("127.0.0.1:", port), absl::StrCat("/", ns), ec);
  if (ec) return absl::UnavailableError(ec.message());
  impl->ws.text(true);
  return std::unique_ptr<WsClient>(new WsClient(std::move(impl)));
}

WsClient::~WsClient() {
  Drop();
  // The pending read fails on the shut-down socket; then ioc runs out of work and run() returns.
  impl_->work.reset();
  reader_.join();
}

void WsClient::ReadNext() {
  impl_->ws.async_read(impl_->buf, [this](beast::error_code ec, size_t) {
    {
      absl::MutexLock l(&mu_);
      if (ec) {
        closed_ = true;
        return;
      }
      frames_.push_back(
          json::parse(beast::buffers_to_string(impl_->buf.data()), nullptr, false));
    }
    impl_->buf.clear();
    ReadNext();
  });
}

void WsClient::Send(const json& frame) { SendText(frame.dump()); }

void WsClient::SendText(const std::string& text) {
  absl::MutexLock l(&send_mu_);  // one write at a time on the stream
  absl::Notification done;
  net::post(impl_->ioc, [&] {
    // async: Beast orders it with the pong / close frames the pending read may be writing.
    impl_->ws.async_write(net::buffer(text), [&](beast::error_code, size_t) { done.Notify(); });
  });
  done.WaitForNotification();
}

std::optional<json> WsClient::Next(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !frames_.empty() || closed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), testutil::Scaled(timeout));
  if (frames_.empty()) return std::nullopt;
  json f = std::move(frames_.front());
  frames_.pop_front();
  return f;
}

bool WsClient::WaitClosed(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_; };
  return mu_.AwaitWithTimeout(absl::Condition(&closed), testutil::Scaled(timeout));
}

void WsClient::Drop() {
  RunOnIoThread(impl_->ioc, [&] {
    beast::error_code ec;
    impl_->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
  });
}

json WsClient::Auth(const std::string& id, const std::string& passkey) {
  Send({{"authVersion", 1}, {"clientIdentifier", id}, {"clientPasskey", passkey}});
  return Next().value_or(json());
}

json WsClient::Rpc(const std::string& endpoint, const json& parameter) {
  const int64_t id = next_id();
  json call = {{"type", "rpcCall"}, {"endpoint", endpoint}, {"callId", id}};
  if (!parameter.is_null()) call["parameter"] = parameter;
  Send(call);
  while (auto f = Next()) {
    if (f->value("callId", json(-1)) == id) return *f;
  }
  return json();
}

std::vector<json> WsClient::Channel(const std::string& endpoint, int64_t channel_id,
                                    const json& creation,
                                    const std::function<void(const json&)>& on_message) {
  Send({{"type", "channelCreate"}, {"endpoint", endpoint}, {"channelId", channel_id},
        {"creationParameter", creation}});
  std::vector<json> frames;
  while (auto f = Next()) {
    if (f->value("channelId", json(-1)) != channel_id) continue;
    frames.push_back(*f);
    const std::string type = f->value("type", "");
    if (type == "channelClose" || type == "channelError") break;
    if (type == "channelSend" && on_message) on_message((*f)["message"]);
  }
  return frames;
}

bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + testutil::Scaled(timeout);
  while (!predicate()) {
    if (absl::Now() >= deadline) return predicate();
    absl::SleepFor(absl::Milliseconds(2));  // polling interval, not a synchronisation sleep
  }
  return true;
}

}  // namespace lmgate::emulator::testing
