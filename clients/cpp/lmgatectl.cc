// lmgatectl: command-line client for lmgate.
//   lmgatectl [--addr=HOST:PORT] [--key=KEY] <command> [args]
// Commands: models, load MODEL, unload MODEL, chat TEXT..., complete TEXT..., embed TEXT...,
// watch, info, policy set|get MODEL. `lmgatectl --help` lists every flag.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "clients/cpp/policy_command.h"
#include "common/cli_flags.h"
#include "google/protobuf/util/time_util.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051",
          "lmgate address (host:port); when not given, $LMGATE_ADDR if set.");
ABSL_FLAG(std::string, key, "", "lmgate API key (default: $LMGATE_API_KEY).");
ABSL_FLAG(bool, tls, false, "Use TLS.");
ABSL_FLAG(std::string, ca, "", "CA certificate (PEM) to verify lmgate with; implies --tls.");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM) for mTLS; implies --tls.");
ABSL_FLAG(std::string, cert_key, "", "Private key (PEM) of --cert.");
ABSL_FLAG(std::string, model, "", "Model key or instance identifier (default: lmgate's).");
ABSL_FLAG(std::string, driver, "auto", "auto, sdk, rest, openai or cli.");
ABSL_FLAG(std::string, system, "", "chat: system prompt.");
ABSL_FLAG(int, max_tokens, 0,
          "chat/complete: maximum tokens to generate (0 = no limit); policy set: the model's "
          "default.");
ABSL_FLAG(double, temperature, -1,
          "chat/complete: sampling temperature (-1 = model default); policy set: the model's "
          "default.");
ABSL_FLAG(int64_t, seed, -1, "chat/complete: seed (-1 = unset); policy set: the model's default.");
ABSL_FLAG(double, top_p, 1, "policy set: the model's default nucleus sampling (0..1].");
ABSL_FLAG(int, top_k, 0, "policy set: the model's default top-k (0 disables).");
ABSL_FLAG(int, ttl_seconds, 0, "policy set: the model's idle TTL in seconds (0 = never expire).");
ABSL_FLAG(bool, default, false, "policy set: make the model the default model.");
ABSL_FLAG(bool, reset, false,
          "policy set: drop the model's earlier run-time changes first (back to the config).");
ABSL_FLAG(bool, loaded, false, "models: only loaded models.");
ABSL_FLAG(bool, refresh, false, "models: re-read the LM Studio host first.");
ABSL_FLAG(int, context_length, 0,
          "load, policy set: context length in tokens (0 = configured default).");
ABSL_FLAG(double, gpu, -1, "load, policy set: GPU offload ratio 0..1 (-1 = default).");
ABSL_FLAG(int, ttl, 0, "load: idle TTL in seconds (0 = configured default).");
ABSL_FLAG(std::string, identifier, "", "load: instance identifier.");
ABSL_FLAG(bool, keep_loaded, false,
          "load: pin the instance (never unloaded by TTL/eviction); policy set: pin (true) or "
          "unpin (false) the model.");
ABSL_FLAG(bool, new_instance, false, "load: load another instance even if one is loaded.");
ABSL_FLAG(bool, all, false, "unload: every instance of the model.");
ABSL_FLAG(bool, force, false, "unload: even when requests are running on it.");
ABSL_FLAG(bool, stats, true, "chat/complete: print stats to stderr at the end.");

namespace lmgate {
namespace {

using client::Client;

constexpr const char* kCommands =
    "models, load, unload, chat, complete, embed, watch, info, policy";
constexpr const char* kDrivers = "auto, sdk, rest, openai, cli";

// --driver; false for an unknown value (a usage error, never silently AUTO).
bool ParseDriver(const std::string& d, v1::Driver* out) {
  if (d == "auto") *out = v1::DRIVER_AUTO;
  else if (d == "sdk" || d == "sdk_ws") *out = v1::DRIVER_SDK;
  else if (d == "rest") *out = v1::DRIVER_REST;
  else if (d == "openai") *out = v1::DRIVER_OPENAI;
  else if (d == "cli") *out = v1::DRIVER_CLI;
  else return false;
  return true;
}

v1::Driver Driver() {
  v1::Driver d = v1::DRIVER_AUTO;
  ParseDriver(absl::GetFlag(FLAGS_driver), &d);  // validated by Run() before any call
  return d;
}

const char* StateName(v1::ModelState s) {
  switch (s) {
    case v1::MODEL_STATE_NOT_LOADED:
      return "not-loaded";
    case v1::MODEL_STATE_LOADING:
      return "loading";
    case v1::MODEL_STATE_READY:
      return "ready";
    case v1::MODEL_STATE_UNLOADING:
      return "unloading";
    case v1::MODEL_STATE_FAILED:
      return "failed";
    default:
      return "?";
  }
}

double Seconds(const google::protobuf::Duration& d) { return d.seconds() + d.nanos() / 1e9; }

// Progress on stderr. On a terminal, one line redrawn in place (`\r`); otherwise (a log file, a
// pipe) one plain line per 10% step, so logs hold no carriage returns and no flood of lines.
class Progress {
 public:
  explicit Progress(std::string label, bool bar)
      : label_(std::move(label)), bar_(bar), tty_(isatty(STDERR_FILENO) == 1) {}
  void Update(double fraction) {
    fraction = std::clamp(fraction, 0.0, 1.0);
    if (tty_) {
      std::string line = absl::StrFormat("\r%s %3.0f%%", label_, fraction * 100);
      if (bar_) {
        const int width = 40;
        const int done = static_cast<int>(fraction * width);
        line = absl::StrFormat("\r%s [%s%s] %3.0f%%", label_, std::string(done, '#'),
                               std::string(width - done, '.'), fraction * 100);
      }
      std::fputs(line.c_str(), stderr);
      drawn_ = true;
      return;
    }
    const int step = static_cast<int>(fraction * 10);
    if (step <= last_step_) return;
    last_step_ = step;
    std::fprintf(stderr, "%s %d%%\n", label_.c_str(), step * 10);
  }
  // Ends a line drawn in place (before other output follows).
  void End() {
    if (drawn_) std::fputs("\n", stderr);
    drawn_ = false;
  }

 private:
  std::string label_;
  bool bar_;
  bool tty_;
  bool drawn_ = false;
  int last_step_ = -1;
};

// Ctrl-C. SIGINT is blocked in every thread (main() blocks it before gRPC starts any) and taken
// by one thread with sigwait: while a streaming call is registered (CancelOnInterrupt), the first
// Ctrl-C cancels it (lmgate then stops the upstream prediction or load) and the command ends
// normally; otherwise, or on a second Ctrl-C, the process dies of SIGINT as usual.
absl::Mutex interrupt_mu;
grpc::ClientContext* interrupt_ctx ABSL_GUARDED_BY(interrupt_mu) = nullptr;
bool interrupted ABSL_GUARDED_BY(interrupt_mu) = false;

[[noreturn]] void DieOfSigint() {
  std::fflush(stdout);
  signal(SIGINT, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(SIGINT);
  _exit(130);
}

void StartInterruptThread(const sigset_t& set) {
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      absl::MutexLock l(&interrupt_mu);
      if (interrupt_ctx == nullptr || interrupted) DieOfSigint();
      interrupted = true;
      interrupt_ctx->TryCancel();
    }
  }).detach();
}

class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* ctx) {
    absl::MutexLock l(&interrupt_mu);
    interrupt_ctx = ctx;
  }
  ~CancelOnInterrupt() {
    absl::MutexLock l(&interrupt_mu);
    interrupt_ctx = nullptr;
  }
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;
};

bool Interrupted() {
  absl::MutexLock l(&interrupt_mu);
  return interrupted;
}

int Fail(const grpc::Status& st, Client& c) {
  std::cerr << "lmgatectl: " << c.Describe(st) << "\n";
  return 1;
}

// A streaming call ended by Ctrl-C.
int Cancelled() {
  std::fflush(stdout);
  std::fprintf(stderr, "\n(cancelled)\n");
  return 130;
}

int Models(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::ListModelsRequest req;
  req.set_loaded_only(absl::GetFlag(FLAGS_loaded));
  req.set_refresh(absl::GetFlag(FLAGS_refresh));
  v1::ListModelsResponse resp;
  grpc::Status st = c.models().ListModels(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  std::printf("%-36s %-9s %-10s %8s %-8s %8s  %s\n", "MODEL", "TYPE", "STATE", "SIZE", "QUANT",
              "MAX CTX", "INSTANCES");
  for (const auto& m : resp.models()) {
    std::vector<std::string> inst;
    for (const auto& i : m.instances()) {
      inst.push_back(absl::StrFormat("%s(ctx %d, %d in flight%s)", i.identifier(),
                                     i.context_length(), i.in_flight(),
                                     i.keep_loaded() ? ", pinned" : ""));
    }
    std::printf("%-36s %-9s %-10s %7.1fG %-8s %8d  %s\n", m.key().c_str(),
                m.type() == v1::MODEL_TYPE_EMBEDDING ? "embedding" : "llm", StateName(m.state()),
                m.size_bytes() / 1e9, m.quantization().c_str(), m.max_context_length(),
                absl::StrJoin(inst, ", ").c_str());
  }
  return 0;
}

// GetServerInfo (admin): versions, then one row per enabled driver.
int Info(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::ServerInfo resp;
  grpc::Status st = c.models().GetServerInfo(&ctx, v1::GetServerInfoRequest(), &resp);
  if (!st.ok()) return Fail(st, c);
  std::printf("lmgate %s\nLM Studio %s\n", resp.version().c_str(),
              resp.lmstudio_version().c_str());
  std::printf("%-8s %-8s %s\n", "DRIVER", "STATUS", "CAPABILITIES");
  for (const auto& d : resp.drivers()) {
    std::string name = v1::Driver_Name(d.driver());
    name = absl::AsciiStrToLower(absl::StripPrefix(name, "DRIVER_"));
    std::string caps = absl::StrJoin(d.capabilities(), ",");
    if (!d.working()) absl::StrAppend(&caps, " (", d.error(), ")");
    std::printf("%-8s %-8s %s\n", name.c_str(), d.working() ? "working" : "failing",
                caps.c_str());
  }
  return 0;
}

int Load(Client& c, const std::string& model) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::LoadModelRequest req;
  req.set_model(model);
  req.set_driver(Driver());
  req.set_new_instance(absl::GetFlag(FLAGS_new_instance));
  auto* cfg = req.mutable_config();
  if (absl::GetFlag(FLAGS_context_length) > 0) cfg->set_context_length(absl::GetFlag(FLAGS_context_length));
  if (absl::GetFlag(FLAGS_gpu) >= 0) cfg->set_gpu_offload_ratio(absl::GetFlag(FLAGS_gpu));
  if (absl::GetFlag(FLAGS_ttl) > 0) cfg->mutable_ttl()->set_seconds(absl::GetFlag(FLAGS_ttl));
  cfg->set_identifier(absl::GetFlag(FLAGS_identifier));
  cfg->set_keep_loaded(absl::GetFlag(FLAGS_keep_loaded));
  CancelOnInterrupt interrupt(&ctx);
  auto reader = c.models().LoadModel(&ctx, req);
  v1::LoadModelResponse r;
  Progress progress("loading " + model, /*bar=*/true);
  while (reader->Read(&r)) {
    if (r.has_progress()) {
      progress.Update(r.progress().fraction());
    } else if (r.has_instance()) {
      progress.End();
      std::printf("loaded %s as %s (context %d)\n", r.instance().model_key().c_str(),
                  r.instance().identifier().c_str(), r.instance().context_length());
    }
  }
  grpc::Status st = reader->Finish();
  if (st.error_code() == grpc::StatusCode::CANCELLED && Interrupted()) return Cancelled();
  if (!st.ok()) {
    progress.End();
    return Fail(st, c);
  }
  return 0;
}

int Unload(Client& c, const std::string& model) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::UnloadModelRequest req;
  req.set_model(model);
  req.set_all_instances(absl::GetFlag(FLAGS_all));
  req.set_force(absl::GetFlag(FLAGS_force));
  req.set_driver(Driver());
  v1::UnloadModelResponse resp;
  grpc::Status st = c.models().UnloadModel(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  for (const auto& id : resp.unloaded()) std::printf("unloaded %s\n", id.c_str());
  return 0;
}

void FillSampling(v1::SamplingParams* s) {
  if (absl::GetFlag(FLAGS_max_tokens) > 0) s->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  if (absl::GetFlag(FLAGS_temperature) >= 0) s->set_temperature(absl::GetFlag(FLAGS_temperature));
  if (absl::GetFlag(FLAGS_seed) >= 0) s->set_seed(absl::GetFlag(FLAGS_seed));
}

template <typename Request, typename Call>
int Generate(Client& c, const Request& req, Call call) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  CancelOnInterrupt interrupt(&ctx);
  auto reader = call(&ctx, req);
  v1::ChatResponse r;
  Progress loading("loading model", /*bar=*/false);
  while (reader->Read(&r)) {
    switch (r.event_case()) {
      case v1::ChatResponse::kContentDelta:
        loading.End();
        std::fwrite(r.content_delta().data(), 1, r.content_delta().size(), stdout);
        std::fflush(stdout);
        break;
      case v1::ChatResponse::kReasoningDelta:
        std::fprintf(stderr, "%s", r.reasoning_delta().c_str());
        break;
      case v1::ChatResponse::kModelLoading:
        loading.Update(r.model_loading().fraction());
        break;
      case v1::ChatResponse::kToolCallDelta:
        std::fprintf(stderr, "[tool call %s %s%s]", r.tool_call_delta().id().c_str(),
                     r.tool_call_delta().name().c_str(), r.tool_call_delta().arguments().c_str());
        break;
      case v1::ChatResponse::kResult: {
        std::printf("\n");
        std::fflush(stdout);
        if (absl::GetFlag(FLAGS_stats)) {
          const auto& s = r.result().stats();
          std::fprintf(stderr,
                       "-- %s via %s: %d prompt + %d completion tokens, %.1f tok/s, TTFT %.3fs, "
                       "load wait %.3fs, total %.3fs, stop %s\n",
                       s.instance().c_str(), v1::Driver_Name(s.driver()).c_str(),
                       s.prompt_tokens(), s.completion_tokens(), s.tokens_per_second(),
                       Seconds(s.time_to_first_token()), Seconds(s.load_wait()),
                       Seconds(s.total_time()), v1::StopReason_Name(s.stop_reason()).c_str());
        }
        break;
      }
      default:
        break;
    }
  }
  grpc::Status st = reader->Finish();
  if (st.error_code() == grpc::StatusCode::CANCELLED && Interrupted()) return Cancelled();
  if (!st.ok()) return Fail(st, c);
  return 0;
}

int Chat(Client& c, const std::string& text) {
  v1::ChatRequest req;
  req.set_model(absl::GetFlag(FLAGS_model));
  req.set_driver(Driver());
  if (!absl::GetFlag(FLAGS_system).empty()) {
    auto* m = req.add_messages();
    m->set_role("system");
    m->set_content(absl::GetFlag(FLAGS_system));
  }
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content(text);
  FillSampling(req.mutable_sampling());
  return Generate(c, req, [&](grpc::ClientContext* ctx, const v1::ChatRequest& r) {
    return c.inference().Chat(ctx, r);
  });
}

int Complete(Client& c, const std::string& text) {
  v1::CompleteRequest req;
  req.set_model(absl::GetFlag(FLAGS_model));
  req.set_driver(Driver());
  req.set_prompt(text);
  FillSampling(req.mutable_sampling());
  return Generate(c, req, [&](grpc::ClientContext* ctx, const v1::CompleteRequest& r) {
    return c.inference().Complete(ctx, r);
  });
}

int Embed(Client& c, const std::vector<std::string>& inputs) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::EmbedRequest req;
  req.set_model(absl::GetFlag(FLAGS_model));
  req.set_driver(Driver());
  for (const auto& in : inputs) req.add_inputs(in);
  v1::EmbedResponse resp;
  grpc::Status st = c.inference().Embed(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  for (const auto& e : resp.embeddings()) {
    std::printf("[%d] dim %d:", e.index(), e.values_size());
    for (int i = 0; i < std::min(4, e.values_size()); ++i) std::printf(" %.4f", e.values(i));
    std::printf("%s\n", e.values_size() > 4 ? " ..." : "");
  }
  return 0;
}

void PrintEvent(const v1::ModelEvent& e) {
  std::string detail = e.reason();
  if (e.kind() == v1::ModelEvent::KIND_LOAD_PROGRESS) {
    detail = absl::StrFormat("%.0f%%", e.progress() * 100);
  }
  if (e.events_dropped() > 0) {
    absl::StrAppend(&detail, detail.empty() ? "" : "; ", e.events_dropped(),
                    " earlier events dropped (read too slowly)");
  }
  std::printf("%s %-20s %-28s %-12s %s%s\n",
              google::protobuf::util::TimeUtil::ToString(e.time()).c_str(),
              v1::ModelEvent::Kind_Name(e.kind()).c_str() + 5, e.model_key().c_str(),
              StateName(e.state()), e.instance().c_str(),
              detail.empty() ? "" : (" — " + detail).c_str());
  std::fflush(stdout);
}

// Streams events until Ctrl-C. When lmgate goes away (a restart ends the stream OK, a crash
// UNAVAILABLE) after the watch was established, it waits for lmgate to come back and watches
// again (with a fresh snapshot); any other failure ends it with exit 1.
int Watch(Client& c) {
  v1::WatchModelsRequest req;
  req.set_model(absl::GetFlag(FLAGS_model));
  req.set_include_snapshot(true);
  bool reconnecting = false;
  for (;;) {
    grpc::ClientContext ctx;
    c.Prepare(&ctx);
    // While reconnecting the call waits for the channel to connect again instead of failing.
    if (reconnecting) ctx.set_wait_for_ready(true);
    CancelOnInterrupt interrupt(&ctx);
    auto reader = c.models().WatchModels(&ctx, req);
    v1::ModelEvent e;
    bool got_event = false;
    while (reader->Read(&e)) {
      if (reconnecting && !got_event) {
        std::fprintf(stderr, "lmgatectl: reconnected to lmgate at %s\n", c.options().address.c_str());
      }
      got_event = true;
      PrintEvent(e);
    }
    grpc::Status st = reader->Finish();
    // Ctrl-C is how a watch ends.
    if (Interrupted()) return 0;
    const bool established = got_event || !ctx.GetServerInitialMetadata().empty();
    // OK: lmgate shut down; UNAVAILABLE: the connection broke; CANCELLED (not by us): lmgate
    // cancelled the call at the end of its shutdown grace.
    const bool gone = st.ok() || st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                      st.error_code() == grpc::StatusCode::CANCELLED;
    if (!gone || (!established && !reconnecting)) return st.ok() ? 0 : Fail(st, c);
    if (established) {
      std::fprintf(stderr, "lmgatectl: lmgate at %s went away (%s); reconnecting (Ctrl-C ends)\n",
                   c.options().address.c_str(), st.ok() ? "it shut down" : "connection lost");
    } else {
      // Connected but ended at once (lmgate draining): do not spin.
      absl::SleepFor(absl::Milliseconds(200));
    }
    reconnecting = true;
  }
}

int Usage(const std::string& message) {
  std::cerr << "lmgatectl: " << message << "\n";
  return 2;
}

// policy set MODEL: the flags given on the command line (`specified`) are the changes.
v1::UpdateModelPolicyRequest PolicyRequest(const std::string& model,
                                           const std::set<std::string>& specified) {
  v1::UpdateModelPolicyRequest req;
  req.set_model(model);
  auto given = [&](const char* flag) { return specified.count(flag) > 0; };
  if (given("ttl_seconds")) req.mutable_ttl()->set_seconds(absl::GetFlag(FLAGS_ttl_seconds));
  if (given("keep_loaded")) req.set_keep_loaded(absl::GetFlag(FLAGS_keep_loaded));
  v1::SamplingParams* s = req.mutable_sampling();
  if (given("temperature")) s->set_temperature(absl::GetFlag(FLAGS_temperature));
  if (given("top_p")) s->set_top_p(absl::GetFlag(FLAGS_top_p));
  if (given("top_k")) s->set_top_k(absl::GetFlag(FLAGS_top_k));
  if (given("max_tokens")) s->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  if (given("seed")) s->set_seed(absl::GetFlag(FLAGS_seed));
  v1::LoadConfig* c = req.mutable_config();
  if (given("context_length")) c->set_context_length(absl::GetFlag(FLAGS_context_length));
  if (given("gpu")) c->set_gpu_offload_ratio(absl::GetFlag(FLAGS_gpu));
  req.set_make_default(absl::GetFlag(FLAGS_default));
  req.set_reset(absl::GetFlag(FLAGS_reset));
  return req;
}

int Run(const std::vector<std::string>& args, const std::set<std::string>& specified) {
  const bool addr_given = specified.count("addr") > 0;
  // Usage errors first: they exit 2 without trying to connect.
  if (args.empty()) return Usage(absl::StrCat("missing command (", kCommands, "); see --help"));
  const std::string& cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "models" || cmd == "watch" || cmd == "info") {
    if (!rest.empty()) return Usage(cmd + " takes no arguments; see --help");
  } else if (cmd == "load" || cmd == "unload") {
    if (rest.size() != 1) return Usage(cmd + " needs a MODEL; see --help");
  } else if (cmd == "chat" || cmd == "complete" || cmd == "embed") {
    if (rest.empty()) return Usage(cmd + " needs TEXT; see --help");
  } else if (cmd == "policy") {
    if (rest.size() != 2 || (rest[0] != "set" && rest[0] != "get")) {
      return Usage("policy needs set MODEL [--ttl_seconds=N --keep_loaded=B ...] or get MODEL; "
                   "see --help");
    }
    if (rest[0] == "get") {
      for (const char* f : {"ttl_seconds", "keep_loaded", "temperature", "top_p", "top_k",
                            "max_tokens", "seed", "context_length", "gpu", "default", "reset"}) {
        if (specified.count(f)) return Usage(absl::StrCat("policy get takes no --", f,
                                                          "; use policy set"));
      }
    }
  } else {
    return Usage(absl::StrCat("unknown command \"", cmd, "\" (", kCommands, "); see --help"));
  }
  v1::Driver driver;
  if (!ParseDriver(absl::GetFlag(FLAGS_driver), &driver)) {
    return Usage(absl::StrCat("unknown --driver \"", absl::GetFlag(FLAGS_driver), "\" (", kDrivers,
                              ")"));
  }
  if (absl::GetFlag(FLAGS_cert).empty() != absl::GetFlag(FLAGS_cert_key).empty()) {
    return Usage("--cert and --cert_key go together (mTLS)");
  }

  client::Options o;
  o.address = absl::GetFlag(FLAGS_addr);
  if (const char* env = std::getenv("LMGATE_ADDR"); !addr_given && env != nullptr && *env) {
    o.address = env;
  }
  o.api_key = absl::GetFlag(FLAGS_key);
  if (o.api_key.empty() && std::getenv("LMGATE_API_KEY")) o.api_key = std::getenv("LMGATE_API_KEY");
  o.ca_file = absl::GetFlag(FLAGS_ca);
  o.cert_file = absl::GetFlag(FLAGS_cert);
  o.key_file = absl::GetFlag(FLAGS_cert_key);
  o.tls = absl::GetFlag(FLAGS_tls);
  auto c = Client::Connect(o);
  if (!c.ok()) {
    std::cerr << "lmgatectl: " << c.status().message() << "\n";
    return 1;
  }
  const std::string text = absl::StrJoin(rest, " ");
  if (cmd == "models") return Models(**c);
  if (cmd == "watch") return Watch(**c);
  if (cmd == "info") return Info(**c);
  if (cmd == "load") return Load(**c, rest[0]);
  if (cmd == "unload") return Unload(**c, rest[0]);
  if (cmd == "policy") return client::PolicyCommand(**c, PolicyRequest(rest[1], specified));
  if (cmd == "chat") return Chat(**c, text);
  if (cmd == "complete") return Complete(**c, text);
  return Embed(**c, rest);
}

}  // namespace
}  // namespace lmgate

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "lmgatectl: command-line client for lmgate.\n"
      "  lmgatectl [--addr=127.0.0.1:50051] models | load MODEL | unload MODEL |\n"
      "            chat TEXT... | complete TEXT... | embed TEXT... | watch | info |\n"
      "            policy set MODEL [--ttl_seconds=N] [--keep_loaded=true|false]\n"
      "              [--temperature=T] [--top_p=P] [--top_k=K] [--max_tokens=N] [--seed=S]\n"
      "              [--context_length=N] [--gpu=R] [--default] [--reset] | policy get MODEL\n"
      "policy set changes a model's policy at run time (admin key; kept across a reload,\n"
      "not a restart): only the flags given change; it prints the policy in force.\n"
      "--addr defaults to $LMGATE_ADDR, then 127.0.0.1:50051; --key to $LMGATE_API_KEY.\n"
      "Ctrl-C cancels a running chat or load (the upstream prediction or load stops too; exit\n"
      "130) and ends watch. watch reconnects when lmgate restarts.\n"
      "Exit status: 0 ok, 1 a failed call, 2 bad usage.\n\n";
  // Before any thread exists, so that every thread gRPC starts inherits the mask.
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
  lmgate::StartInterruptThread(sigint);
  lmgate::cli::ParsedCommandLine cl = lmgate::cli::ParseCommandLine(argc, argv);
  switch (cl.outcome) {
    case lmgate::cli::ParsedCommandLine::Outcome::kHelp:
      std::cout << kUsage << lmgate::cli::FlagsHelp({"clients/cpp/lmgatectl.cc"});
      return 0;
    case lmgate::cli::ParsedCommandLine::Outcome::kUsageError:
      return lmgate::Usage(cl.error);
    case lmgate::cli::ParsedCommandLine::Outcome::kOk:
      break;
  }
  return lmgate::Run(cl.positional, cl.specified);
}
