#include "tests/bench/chat_target.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/builtin.h"
#include "backends/driver.h"
#include "backends/registry.h"

namespace lmgate::bench {
namespace {

constexpr char kPrompt[] = "Tell me about gateways.";

// --- through lmgate ----------------------------------------------------------------------------

// Owned by gRPC until OnDone and by its GrpcCall handle: whichever lets go last deletes it.
class GrpcChatReactor : public grpc::ClientReadReactor<v1::ChatResponse> {
 public:
  GrpcChatReactor(v1::Inference::Stub* stub, const v1::ChatRequest& request,
                  absl::Duration timeout, ChatCallbacks callbacks)
      : request_(request), callbacks_(std::move(callbacks)) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    stub->async()->Chat(&ctx_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_content_delta() && !first_) {
      first_ = true;
      if (callbacks_.on_first_token) callbacks_.on_first_token(absl::Now());
    } else if (response_.has_result()) {
      tokens_ = response_.result().stats().completion_tokens();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& s) override {
    const absl::Time now = absl::Now();
    absl::Status st(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    if (callbacks_.on_done) callbacks_.on_done(st, tokens_, now);
    Unref();
  }

  void Cancel() { ctx_.TryCancel(); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  grpc::ClientContext ctx_;
  v1::ChatRequest request_;
  v1::ChatResponse response_;
  ChatCallbacks callbacks_;
  bool first_ = false;
  int tokens_ = 0;
  std::atomic<int> refs_{2};
};

class GrpcCall : public ChatCall {
 public:
  explicit GrpcCall(GrpcChatReactor* r) : r_(r) {}
  ~GrpcCall() override { r_->Unref(); }
  void Cancel() override { r_->Cancel(); }

 private:
  GrpcChatReactor* r_;
};

class GrpcTarget : public ChatTarget {
 public:
  GrpcTarget(std::vector<std::shared_ptr<grpc::Channel>> channels, v1::Driver driver,
             std::string model)
      : name_(absl::StrCat("lmgate ", driver == v1::DRIVER_OPENAI ? "openai" : "sdk_ws")) {
    for (auto& c : channels) stubs_.push_back(v1::Inference::NewStub(c));
    request_.set_model(std::move(model));
    request_.set_driver(driver);
    auto* m = request_.add_messages();
    m->set_role("user");
    m->set_content(kPrompt);
    request_.mutable_sampling()->set_seed(7);
  }
  const std::string& name() const override { return name_; }

  std::unique_ptr<ChatCall> Start(const ChatSpec& spec, ChatCallbacks callbacks) override {
    v1::ChatRequest req = request_;
    if (spec.max_tokens) req.mutable_sampling()->set_max_tokens(*spec.max_tokens);
    req.set_no_deltas(!spec.stream);
    req.set_quiet(!spec.stream);
    const size_t i = next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size();
    return std::make_unique<GrpcCall>(
        new GrpcChatReactor(stubs_[i].get(), req, spec.timeout, std::move(callbacks)));
  }

 private:
  const std::string name_;
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs_;
  v1::ChatRequest request_;
  std::atomic<size_t> next_{0};
};

// --- direct ------------------------------------------------------------------------------------

class DirectObserver : public backends::GenerateObserver {
 public:
  explicit DirectObserver(ChatCallbacks callbacks) : callbacks_(std::move(callbacks)) {}
  void OnEvent(backends::GenerateEvent e) override {
    if (e.kind != backends::GenerateEvent::Kind::kContent || first_) return;
    first_ = true;
    if (callbacks_.on_first_token) callbacks_.on_first_token(absl::Now());
  }
  void OnComplete(absl::StatusOr<backends::GenerateResult> result) override {
    const absl::Time now = absl::Now();
    if (callbacks_.on_done) {
      callbacks_.on_done(result.status(), result.ok() ? result->stats.completion_tokens : 0, now);
    }
  }

 private:
  ChatCallbacks callbacks_;
  bool first_ = false;
};

class DirectCall : public ChatCall {
 public:
  explicit DirectCall(std::unique_ptr<backends::GenerateHandle> h) : h_(std::move(h)) {}
  void Cancel() override {
    if (h_) h_->Cancel();
  }

 private:
  std::unique_ptr<backends::GenerateHandle> h_;
};

class DirectTarget : public ChatTarget {
 public:
  DirectTarget(std::string driver_name, std::unique_ptr<backends::Driver> driver,
               std::string model)
      : name_(absl::StrCat("direct ", driver_name)), driver_(std::move(driver)) {
    request_.model = std::move(model);
    request_.chat = true;
    backends::Message m;
    m.role = "user";
    m.content = kPrompt;
    request_.messages.push_back(m);
    request_.sampling.seed = 7;
  }
  const std::string& name() const override { return name_; }

  std::unique_ptr<ChatCall> Start(const ChatSpec& spec, ChatCallbacks callbacks) override {
    backends::CallContext ctx;
    ctx.deadline = absl::Now() + spec.timeout;
    ctx.cancel = std::make_shared<backends::CancelToken>();
    backends::GenerateRequest req = request_;
    req.sampling.max_tokens = spec.max_tokens;
    return std::make_unique<DirectCall>(driver_->Generate(
        ctx, req, std::make_shared<DirectObserver>(std::move(callbacks))));
  }

 private:
  const std::string name_;
  std::unique_ptr<backends::Driver> driver_;
  backends::GenerateRequest request_;
};

}  // namespace

std::unique_ptr<ChatTarget> MakeGrpcTarget(std::vector<std::shared_ptr<grpc::Channel>> channels,
                                           v1::Driver driver, std::string model) {
  return std::make_unique<GrpcTarget>(std::move(channels), driver, std::move(model));
}

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& addr, int n) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("lmgate.bench.channel", i);  // distinct args: no shared subchannel
    out.push_back(
        grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ChatTarget>> MakeDirectTarget(const std::string& driver,
                                                             const std::string& base_url,
                                                             std::string model) {
  backends::BackendRegistry registry;
  if (auto st = backends::RegisterBuiltinBackends(registry); !st.ok()) return st;
  backends::HostConfig host;
  host.base_url = base_url;
  auto d = registry.Create(driver, host);
  if (!d.ok()) return d.status();
  return std::make_unique<DirectTarget>(driver, *std::move(d), std::move(model));
}

}  // namespace lmgate::bench
