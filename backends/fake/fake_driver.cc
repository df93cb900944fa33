#include "backends/fake/fake_driver.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lmgate::backends {

struct FakeDriver::Prediction {
  GenerateRequest request;
  std::shared_ptr<GenerateObserver> observer;
  std::shared_ptr<CancelToken> cancel = std::make_shared<CancelToken>();
  std::shared_ptr<CancelToken> caller_cancel;
  absl::Time deadline;
};

namespace {

class FakeHandle : public GenerateHandle {
 public:
  explicit FakeHandle(std::shared_ptr<CancelToken> token) : token_(std::move(token)) {}
  void Cancel() override { token_->Cancel(); }

 private:
  std::shared_ptr<CancelToken> token_;
};

constexpr const char* kWords[] = {"alpha", "bravo", "charlie", "delta", "echo",   "foxtrot",
                                  "golf",  "hotel", "india",   "juliet", "kilo", "lima"};

}  // namespace

Capabilities FakeDriver::AllCapabilities() {
  Capabilities c;
  c.list_models = c.load = c.load_progress = c.unload = c.chat = c.complete = c.embed =
      c.tokenize = c.inference_stats = c.tool_calls = c.structured_output = true;
  c.context_overflow_policy = true;
  return c;
}

std::vector<ModelInfo> FakeDriver::DefaultCatalogue() {
  ModelInfo llm;
  llm.key = "fake/llm-small";
  llm.display_name = "Fake LLM Small";
  llm.type = ModelType::kLlm;
  llm.format = "gguf";
  llm.size_bytes = 1'000'000'000;
  llm.quantization = "Q4_K_M";
  llm.quantization_bits = 4;
  llm.max_context_length = 8192;
  llm.publisher = "fake";
  llm.architecture = "llama";
  llm.params = "1B";
  llm.trained_for_tool_use = true;
  ModelInfo llm2 = llm;
  llm2.key = "fake/llm-large";
  llm2.display_name = "Fake LLM Large";
  llm2.size_bytes = 4'000'000'000;
  llm2.params = "7B";
  ModelInfo emb;
  emb.key = "fake/embed";
  emb.display_name = "Fake Embedding";
  emb.type = ModelType::kEmbedding;
  emb.format = "gguf";
  emb.size_bytes = 100'000'000;
  emb.max_context_length = 2048;
  emb.publisher = "fake";
  emb.architecture = "bert";
  return {llm, llm2, emb};
}

FakeDriver::FakeDriver(Options options) : options_(std::move(options)) {}

FakeDriver::~FakeDriver() { Shutdown(); }

void FakeDriver::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    stop_ = true;
    hold_predictions_ = hold_loads_ = false;
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

absl::Status FakeDriver::TakeInjectedFailure() {
  if (shutting_down_) return absl::UnavailableError("the fake driver shut down");
  if (fail_next_ <= 0) return absl::OkStatus();
  --fail_next_;
  return fail_status_;
}

const ModelInfo* FakeDriver::FindModel(const std::string& key) const {
  for (const auto& m : options_.catalogue) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

absl::Status FakeDriver::Probe(const CallContext&) {
  absl::MutexLock lock(&mu_);
  return TakeInjectedFailure();
}

absl::StatusOr<HostModels> FakeDriver::ListModels(const CallContext&) {
  absl::MutexLock lock(&mu_);
  if (auto st = TakeInjectedFailure(); !st.ok()) return st;
  HostModels out;
  out.downloaded = options_.catalogue;
  out.loaded = loaded_;
  return out;
}

absl::StatusOr<InstanceInfo> FakeDriver::Load(const CallContext& ctx, const LoadParams& params,
                                              const LoadProgressFn& progress) {
  const ModelInfo* model = FindModel(params.model_key);
  {
    absl::MutexLock lock(&mu_);
    if (auto st = TakeInjectedFailure(); !st.ok()) return st;
    if (model == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("Cannot find model with key \"", params.model_key, "\""));
    }
    ++loads_started_;
  }
  if (progress) progress(0.0);
  if (progress) progress(0.5);
  {
    absl::MutexLock lock(&mu_);
    ++held_loads_;
    auto released = [this, &ctx]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !hold_loads_ || ctx.cancelled() || absl::Now() >= ctx.deadline;
    };
    // Cancellation is observed by polling the token under a short timeout: the token has no
    // condition variable of its own to wait on.
    while (!released()) mu_.AwaitWithTimeout(absl::Condition(&released), absl::Milliseconds(5));
    --held_loads_;
  }
  if (auto st = ctx.CheckAlive(); !st.ok()) return st;
  if (progress) progress(1.0);
  InstanceInfo inst;
  inst.model_key = model->key;
  inst.type = model->type;
  inst.context_length = params.context_length.value_or(4096);
  inst.ttl = params.ttl;
  inst.parallel_slots = params.parallel_slots.value_or(4);
  absl::MutexLock lock(&mu_);
  std::string id = params.identifier.empty() ? model->key : params.identifier;
  for (int n = 2;; ++n) {
    bool taken = false;
    for (const auto& i : loaded_) taken |= i.identifier == id;
    if (!taken) break;
    if (!params.identifier.empty()) {
      return absl::AlreadyExistsError(absl::StrCat("identifier \"", id, "\" is in use"));
    }
    id = absl::StrCat(model->key, ":", n);
  }
  inst.identifier = id;
  inst.instance_reference = absl::StrCat("ref-", id);
  loaded_.push_back(inst);
  return inst;
}

absl::Status FakeDriver::Unload(const CallContext&, const std::string& identifier) {
  absl::MutexLock lock(&mu_);
  if (auto st = TakeInjectedFailure(); !st.ok()) return st;
  for (auto it = loaded_.begin(); it != loaded_.end(); ++it) {
    if (it->identifier == identifier) {
      loaded_.erase(it);
      ++unloads_;
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("no loaded instance \"", identifier, "\""));
}

std::string FakeDriver::ReplyFor(const GenerateRequest& request, int words) {
  std::string seed_text = request.chat ? "" : request.prompt;
  for (const auto& m : request.messages) seed_text += m.content;
  size_t h = std::hash<std::string>()(seed_text) + request.sampling.seed.value_or(0);
  std::string out;
  for (int i = 0; i < words; ++i) {
    absl::StrAppend(&out, i ? " " : "", kWords[(h + i * 7) % 12]);
  }
  return out;
}

std::unique_ptr<GenerateHandle> FakeDriver::Generate(const CallContext& ctx,
                                                     const GenerateRequest& request,
                                                     std::shared_ptr<GenerateObserver> observer) {
  auto p = std::make_shared<Prediction>();
  p->request = request;
  p->observer = std::move(observer);
  p->caller_cancel = ctx.cancel;
  p->deadline = ctx.deadline;
  auto handle = std::make_unique<FakeHandle>(p->cancel);
  absl::Status failure;
  {
    absl::MutexLock lock(&mu_);
    last_request_ = request;
    last_traceparent_ = ctx.traceparent;
    failure = TakeInjectedFailure();
    if (failure.ok()) {
      ++predictions_started_;
      ++predictions_active_;
      threads_.emplace_back([this, p] { RunPrediction(p); });
    }
  }
  if (!failure.ok()) p->observer->OnComplete(failure);
  return handle;
}

void FakeDriver::RunPrediction(std::shared_ptr<Prediction> p) {
  const int max_words = p->request.sampling.max_tokens.value_or(options_.reply_words);
  const int words = std::min(max_words, options_.reply_words);
  std::vector<std::string> parts =
      absl::StrSplit(ReplyFor(p->request, options_.reply_words), ' ');
  auto stopped = [&] {
    return stop_ || p->cancel->cancelled() || (p->caller_cancel && p->caller_cancel->cancelled());
  };
  p->observer->OnEvent({GenerateEvent::Kind::kPromptProgress, "", 0, "", "", 1.0});
  GenerateResult result;
  absl::Status status;
  for (int i = 0; i < words; ++i) {
    if (stopped()) {
      status = absl::CancelledError("prediction cancelled");
      break;
    }
    if (absl::Now() >= p->deadline) {
      status = absl::DeadlineExceededError("deadline passed during generation");
      break;
    }
    std::string piece = i ? " " + parts[i] : parts[i];
    result.content += piece;
    p->observer->OnEvent({GenerateEvent::Kind::kContent, piece, 0, "", "", 0});
    if (i == 0) {
      absl::MutexLock lock(&mu_);
      ++held_predictions_;
      auto released = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !hold_predictions_ || stopped() || absl::Now() >= p->deadline;
      };
      while (!released()) mu_.AwaitWithTimeout(absl::Condition(&released), absl::Milliseconds(2));
      --held_predictions_;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    --predictions_active_;
    if (absl::IsCancelled(status)) ++predictions_cancelled_;
  }
  if (!status.ok()) {
    p->observer->OnComplete(status);
    return;
  }
  result.stats.completion_tokens = words;
  result.stats.prompt_tokens = static_cast<int>(p->request.messages.size()) * 4;
  result.stats.stop_reason = words < options_.reply_words ? StopReason::kMaxTokens : StopReason::kEos;
  result.stats.tokens_per_second = 100.0;
  result.stats.time_to_first_token = absl::Milliseconds(1);
  result.stats.upstream_timings = true;
  p->observer->OnComplete(std::move(result));
}

absl::StatusOr<EmbedResult> FakeDriver::Embed(const CallContext&, const std::string&,
                                              const std::vector<std::string>& inputs) {
  absl::MutexLock lock(&mu_);
  if (auto st = TakeInjectedFailure(); !st.ok()) return st;
  EmbedResult out;
  for (const auto& in : inputs) {
    size_t h = std::hash<std::string>()(in);
    out.embeddings.push_back({static_cast<float>(h % 1000) / 1000.0f, 0.5f, 0.25f});
    out.prompt_tokens += 1;
  }
  return out;
}

absl::StatusOr<std::vector<int>> FakeDriver::Tokenize(const CallContext&, const std::string&,
                                                      const std::string& text) {
  absl::MutexLock lock(&mu_);
  if (auto st = TakeInjectedFailure(); !st.ok()) return st;
  std::vector<int> tokens;
  for (absl::string_view w : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    tokens.push_back(static_cast<int>(std::hash<std::string>()(std::string(w)) % 50000));
  }
  return tokens;
}

absl::StatusOr<int> FakeDriver::CountTokens(const CallContext& ctx, const std::string& model,
                                            const std::string& text) {
  auto tokens = Tokenize(ctx, model, text);
  if (!tokens.ok()) return tokens.status();
  return static_cast<int>(tokens->size());
}

void FakeDriver::HoldPredictions(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_predictions_ = hold;
}

void FakeDriver::HoldLoads(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_loads_ = hold;
}

void FakeDriver::FailNext(int n, absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = n;
  fail_status_ = std::move(status);
}

void FakeDriver::AddLoadedExternally(const std::string& model_key) {
  const ModelInfo* m = FindModel(model_key);
  absl::MutexLock lock(&mu_);
  InstanceInfo inst;
  inst.identifier = model_key;
  inst.model_key = model_key;
  inst.type = m ? m->type : ModelType::kLlm;
  inst.context_length = 4096;
  loaded_.push_back(inst);
}

int FakeDriver::loads_started() const {
  absl::MutexLock lock(&mu_);
  return loads_started_;
}
int FakeDriver::unloads() const {
  absl::MutexLock lock(&mu_);
  return unloads_;
}
int FakeDriver::predictions_started() const {
  absl::MutexLock lock(&mu_);
  return predictions_started_;
}
int FakeDriver::predictions_cancelled() const {
  absl::MutexLock lock(&mu_);
  return predictions_cancelled_;
}
int FakeDriver::predictions_active() const {
  absl::MutexLock lock(&mu_);
  return predictions_active_;
}

bool FakeDriver::WaitForActivePredictions(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return predictions_active_ == n; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

bool FakeDriver::WaitForHeldPredictions(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return held_predictions_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

bool FakeDriver::WaitForHeldLoads(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return held_loads_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

GenerateRequest FakeDriver::last_request() const {
  absl::MutexLock lock(&mu_);
  return last_request_;
}

std::string FakeDriver::last_traceparent() const {
  absl::MutexLock lock(&mu_);
  return last_traceparent_;
}

}  // namespace lmgate::backends
