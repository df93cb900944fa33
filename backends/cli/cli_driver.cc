#include "backends/cli/cli_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/http/url.h"
#include "backends/log.h"
#include "spdlog/spdlog.h"

namespace lmgate::backends::cli {
namespace {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()->clone("cli");
  return *logger;
}

constexpr char kInstallHint[] =
    "LM Studio ships `lms` in ~/.lmstudio/bin; run `npx lmstudio install-cli`, or set "
    "lmstudio.lms_path (--lms_path) to its full path";

// The HOME the child inherits (it is not overridden), for the diagnostic of an unusable one.
std::string ChildHome() {
  const char* home = getenv("HOME");
  return home != nullptr ? home : "";
}

// Why the child could not be started → what the caller can do about it. The server's PATH is
// logged (debug), never sent to the caller.
absl::Status StartFailure(const std::string& request_id, const std::string& lms_path,
                          const absl::Status& why) {
  if (absl::IsNotFound(why)) {
    const char* path = getenv("PATH");
    RequestLog(Log(), request_id)
        .debug("`{}` not found; PATH={}", lms_path, path ? path : "(unset)");
  }
  switch (why.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
      return absl::FailedPreconditionError(
          absl::StrCat("the cli driver runs LM Studio's `lms` tool, but `", lms_path,
                       "` cannot be run (", why.message(), "). ", kInstallHint));
    default:
      return why;
  }
}

// The real `lms` reads some arguments wherever they are, even after `--` (`-v` anywhere prints
// its version and exits 0), so no instance identifier given to it may look like an option.
absl::Status CheckIdentifierArg(const std::string& identifier) {
  if (!identifier.empty() && identifier[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat(
        "instance identifier \"", identifier, "\" starts with '-': `lms` would read it as an option"));
  }
  return absl::OkStatus();
}

std::string CommandLine(const std::vector<std::string>& args) {
  return absl::StrCat("lms ", absl::StrJoin(args, " "));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> LoadArgs(const LoadParams& params,
                                                  const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no model path to load");
  std::vector<std::string> unsupported;
  if (params.cpu_threads) unsupported.push_back("cpu_threads");
  if (params.rope_frequency_base) unsupported.push_back("rope_frequency_base");
  if (params.rope_frequency_scale) unsupported.push_back("rope_frequency_scale");
  if (params.flash_attention) unsupported.push_back("flash_attention");
  if (params.eval_batch_size) unsupported.push_back("eval_batch_size");
  if (!unsupported.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "the cli driver cannot set ", absl::StrJoin(unsupported, ", "),
        " (`lms load` has no flag for them); use the sdk_ws or rest driver"));
  }
  std::vector<std::string> args = {"load", "--exact", "-y"};
  if (params.gpu_offload_ratio) {
    const double r = *params.gpu_offload_ratio;
    if (!(r >= 0.0 && r <= 1.0)) {
      return absl::InvalidArgumentError("gpu_offload_ratio must be between 0 and 1");
    }
    args.push_back("--gpu");
    args.push_back(r == 0.0 ? "off" : r == 1.0 ? "max" : absl::StrCat(r));
  }
  if (params.context_length) {
    if (*params.context_length < 1) {
      return absl::InvalidArgumentError("context_length must be at least 1");
    }
    args.push_back("--context-length");
    args.push_back(absl::StrCat(*params.context_length));
  }
  if (params.parallel_slots) {
    if (*params.parallel_slots < 1) {
      return absl::InvalidArgumentError("parallel_slots must be at least 1");
    }
    args.push_back("--parallel");
    args.push_back(absl::StrCat(*params.parallel_slots));
  }
  if (params.ttl) {
    if (*params.ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("ttl must be > 0");
    // `lms load --ttl` takes whole seconds (at least 1).
    const double seconds = std::ceil(absl::ToDoubleSeconds(*params.ttl));
    args.push_back("--ttl");
    args.push_back(absl::StrCat(static_cast<int64_t>(std::max(1.0, seconds))));
  }
  if (auto st = CheckIdentifierArg(params.identifier); !st.ok()) return st;
  // `--name=value`: the value is never a separate argument.
  if (!params.identifier.empty()) args.push_back(absl::StrCat("--identifier=", params.identifier));
  args.push_back("--");
  args.push_back(path);
  return args;
}

namespace {

absl::Status ShutDownError(const std::string& command) {
  return absl::UnavailableError(absl::StrCat("the cli driver shut down (`", command, "`)"));
}

}  // namespace

CliDriver::CliDriver(Options options, std::vector<std::string> host_args,
                     absl::Status unsupported)
    : options_(std::move(options)), host_args_(std::move(host_args)),
      unsupported_(std::move(unsupported)) {}

absl::StatusOr<std::unique_ptr<CliDriver>> CliDriver::Create(Options options) {
  absl::StatusOr<http::HostUrl> url = http::ParseHostUrl(options.host.base_url);
  if (!url.ok()) return url.status();
  absl::Status unsupported;
  if (url->scheme != "http") {
    unsupported = absl::FailedPreconditionError(
        "`lms` reaches LM Studio over plain http/ws only; the cli driver cannot use an https host");
  } else if (!url->prefix.empty()) {
    unsupported = absl::FailedPreconditionError(absl::StrCat(
        "`lms` cannot reach LM Studio behind a path prefix (", url->prefix, ")"));
  } else if (url->host.find(':') != std::string::npos) {
    unsupported = absl::FailedPreconditionError(
        "`lms --host` rejects IPv6 literals; name the LM Studio host by a hostname or IPv4");
  }
  // Say at start, not at the first load, that the enabled driver cannot work (the PATH stays in
  // the server's log; callers only ever see FAILED_PRECONDITION with the hint).
  const char* path_env = getenv("PATH");
  if (absl::StatusOr<std::string> exe = ResolveExecutable(
          options.host.lms_path, path_env != nullptr ? path_env : "/usr/bin:/bin");
      !exe.ok()) {
    Log().warn(
        "the cli driver is enabled but `{}` cannot be run ({}): lifecycle calls through it will "
        "fail. {}; or leave cli out of --drivers",
        options.host.lms_path, std::string(exe.status().message()), kInstallHint);
  }
  std::vector<std::string> host_args = {"--host", url->host, "--port", absl::StrCat(url->port)};
  return std::unique_ptr<CliDriver>(
      new CliDriver(std::move(options), std::move(host_args), std::move(unsupported)));
}

Capabilities CliDriver::capabilities() const {
  Capabilities c;
  c.list_models = true;
  c.load = true;
  c.unload = true;
  return c;  // no inference, embeddings or tokenizer: `lms` has no scriptable interface for them
}

absl::Time CliDriver::UnaryDeadline(const CallContext& ctx) const {
  return std::min(ctx.deadline, absl::Now() + options_.host.request_timeout);
}

void CliDriver::Shutdown() {
  shutdown_->Cancel();  // kills the running children
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

absl::StatusOr<ProcessResult> CliDriver::Run(const CallContext& ctx,
                                             std::vector<std::string> args,
                                             absl::Time deadline) const {
  if (!unsupported_.ok()) return unsupported_;
  if (absl::Status alive = ctx.CheckAlive(); !alive.ok()) return alive;
  auto positional = std::find(args.begin(), args.end(), "--");
  args.insert(positional, host_args_.begin(), host_args_.end());
  const std::string command = CommandLine(args);
  RequestLog(Log(), ctx.request_id).debug("running {}", command);

  ProcessSpec spec;
  spec.program = options_.host.lms_path;
  spec.args = std::move(args);
  // Plain text: no colours to strip, whatever the CLI guesses about its output.
  spec.env = {{"FORCE_COLOR", "0"}, {"NO_COLOR", "1"}};
  if (!options_.host.api_token.empty()) spec.env.emplace_back("LM_API_TOKEN", options_.host.api_token);
  spec.deadline = std::min(deadline, ctx.deadline);
  spec.kill_grace = options_.kill_grace;
  spec.on_started = options_.on_child_started;
  // The child stops when the call is cancelled or the driver shuts down.
  spec.cancel = std::make_shared<CancelToken>();
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_->cancelled()) return ShutDownError(command);
    ++running_;
  }
  auto forward = [token = spec.cancel] { token->Cancel(); };
  const CancelToken::CallbackId from_call = ctx.cancel ? ctx.cancel->AddCallback(forward) : 0;
  const CancelToken::CallbackId from_shutdown = shutdown_->AddCallback(forward);
  absl::StatusOr<ProcessResult> result = RunProcess(spec);
  if (from_call != 0) ctx.cancel->RemoveCallback(from_call);
  shutdown_->RemoveCallback(from_shutdown);
  {
    absl::MutexLock lock(&mu_);
    --running_;
  }
  if (!result.ok() && shutdown_->cancelled() && !ctx.cancelled()) return ShutDownError(command);
  if (!result.ok()) {
    const absl::Status& s = result.status();
    if (s.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::DeadlineExceededError(absl::StrCat("`", command, "`: ", s.message()));
    }
    if (s.code() == absl::StatusCode::kCancelled) {
      return absl::CancelledError(absl::StrCat("`", command, "`: ", s.message()));
    }
    return StartFailure(ctx.request_id, options_.host.lms_path, s);
  }
  RequestLog(Log(), ctx.request_id)
      .debug("{} exited {} (signal {})", command, result->exit_code, result->term_signal);
  return result;
}

absl::StatusOr<ProcessResult> CliDriver::RunChecked(const CallContext& ctx,
                                                    std::vector<std::string> args,
                                                    absl::Time deadline) const {
  const std::string command = CommandLine(args);
  absl::StatusOr<ProcessResult> result = Run(ctx, std::move(args), deadline);
  if (!result.ok()) return result;
  absl::Status status =
      StatusOfRun(command, result->exit_code, result->term_signal, result->err, ChildHome());
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<std::vector<LsModel>> CliDriver::Ls(const CallContext& ctx) const {
  absl::StatusOr<ProcessResult> r = RunChecked(ctx, {"ls", "--json"}, UnaryDeadline(ctx));
  if (!r.ok()) return r.status();
  return ParseLsJson(r->out);
}

absl::StatusOr<std::vector<InstanceInfo>> CliDriver::Ps(const CallContext& ctx) const {
  absl::StatusOr<ProcessResult> r = RunChecked(ctx, {"ps", "--json"}, UnaryDeadline(ctx));
  if (!r.ok()) return r.status();
  return ParsePsJson(r->out);
}

absl::Status CliDriver::Probe(const CallContext& ctx) {
  if (!unsupported_.ok()) return unsupported_;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() - probe_time_ < options_.probe_cache) return probe_status_;
  }
  // `lms ps` is the one cheap command every CLI version has (there is no `lms --version` in
  // most of them).
  absl::StatusOr<ProcessResult> r =
      RunChecked(ctx, {"ps", "--json"}, absl::Now() + options_.probe_timeout);
  absl::Status status = r.status();
  if (r.ok()) status = ParsePsJson(r->out).status();
  absl::MutexLock lock(&mu_);
  probe_time_ = absl::Now();
  probe_status_ = status;
  return status;
}

absl::StatusOr<HostModels> CliDriver::ListModels(const CallContext& ctx) {
  if (!unsupported_.ok()) return unsupported_;
  // Each `lms` start costs a runtime boot; run both at once.
  absl::StatusOr<std::vector<InstanceInfo>> loaded = absl::UnknownError("not run");
  std::thread ps([&] { loaded = Ps(ctx); });
  absl::StatusOr<std::vector<LsModel>> downloaded = Ls(ctx);
  ps.join();
  if (!downloaded.ok()) return downloaded.status();
  if (!loaded.ok()) return loaded.status();
  HostModels out;
  for (LsModel& m : *downloaded) out.downloaded.push_back(std::move(m.info));
  out.loaded = *std::move(loaded);
  for (InstanceInfo& i : out.loaded) {
    if (i.type != ModelType::kUnknown) continue;
    for (const ModelInfo& m : out.downloaded) {
      if (m.key == i.model_key) i.type = m.type;
    }
  }
  return out;
}

absl::StatusOr<InstanceInfo> CliDriver::Load(const CallContext& ctx, const LoadParams& params,
                                             const LoadProgressFn&) {
  if (!unsupported_.ok()) return unsupported_;
  if (params.model_key.empty()) return absl::InvalidArgumentError("the model key is empty");
  absl::StatusOr<std::vector<LsModel>> models = Ls(ctx);
  if (!models.ok()) return models.status();
  const LsModel* model = nullptr;
  for (const LsModel& m : *models) {
    if (m.info.key == params.model_key) model = &m;
  }
  if (model == nullptr) {
    for (const LsModel& m : *models) {
      if (absl::EqualsIgnoreCase(m.info.key, params.model_key)) model = &m;
    }
  }
  if (model == nullptr) {
    std::vector<std::string> keys;
    for (const LsModel& m : *models) keys.push_back(m.info.key);
    return absl::NotFoundError(absl::StrCat("model \"", params.model_key,
                                            "\" is not downloaded on the LM Studio host (`lms ls` "
                                            "lists: ", absl::StrJoin(keys, ", "), ")"));
  }
  absl::StatusOr<std::vector<std::string>> args = LoadArgs(params, model->path);
  if (!args.ok()) return args.status();

  RequestLog(Log(), ctx.request_id).info("loading {} through `lms load`", params.model_key);
  const std::string command = CommandLine(*args);
  absl::StatusOr<ProcessResult> run =
      Run(ctx, *std::move(args), absl::Now() + options_.host.load_timeout);
  if (!run.ok()) return run.status();
  std::optional<std::string> identifier = ParseLoadedIdentifier(run->err);
  if (!identifier) identifier = ParseLoadedIdentifier(run->out);
  if (run->exit_code != 0 || run->term_signal != 0 || !identifier) {
    absl::Status s = StatusOfRun(command, run->exit_code, run->term_signal, run->err, ChildHome());
    if (s.ok() || s.code() == absl::StatusCode::kUnknown) {
      // The host answered and failed the load (or the CLI said nothing we know): its reason.
      return absl::AbortedError(absl::StrCat(
          "loading ", params.model_key, " failed: ",
          s.ok() ? "`lms load` exited 0 without naming the loaded instance" : s.message()));
    }
    return s;
  }

  absl::StatusOr<std::vector<InstanceInfo>> instances = Ps(ctx);
  if (instances.ok()) {
    for (InstanceInfo& i : *instances) {
      if (i.identifier != *identifier) continue;
      if (i.type == ModelType::kUnknown) i.type = model->info.type;
      return std::move(i);
    }
  } else {
    RequestLog(Log(), ctx.request_id)
        .warn("{} loaded, but `lms ps` failed: {}", *identifier, instances.status().ToString());
  }
  // Loaded, but not listed (already unloaded by a TTL, or `ps` failed): what we know.
  InstanceInfo info;
  info.identifier = *identifier;
  info.model_key = model->info.key;
  info.type = model->info.type;
  info.context_length = params.context_length.value_or(0);
  info.ttl = params.ttl;
  info.parallel_slots = params.parallel_slots.value_or(0);
  return info;
}

absl::Status CliDriver::Unload(const CallContext& ctx, const std::string& identifier) {
  if (!unsupported_.ok()) return unsupported_;
  // `lms unload` without an identifier unloads whatever single model is loaded.
  if (identifier.empty()) return absl::InvalidArgumentError("no instance identifier to unload");
  if (auto st = CheckIdentifierArg(identifier); !st.ok()) return st;
  RequestLog(Log(), ctx.request_id).info("unloading {} through `lms unload`", identifier);
  absl::StatusOr<ProcessResult> run =
      RunChecked(ctx, {"unload", "--", identifier}, UnaryDeadline(ctx));
  if (!run.ok()) return run.status();
  // `lms unload` can exit 0 without unloading (it printed its version, say): success only once
  // `lms ps` no longer lists the instance.
  absl::StatusOr<std::vector<InstanceInfo>> loaded = Ps(ctx);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("`lms unload` of ", identifier,
                                     " exited 0, but checking with `lms ps` failed: ",
                                     loaded.status().message()));
  }
  for (const InstanceInfo& i : *loaded) {
    if (i.identifier == identifier) {
      return absl::AbortedError(absl::StrCat("`lms unload` exited 0, but `lms ps` still lists ",
                                             identifier, "; it was not unloaded"));
    }
  }
  return absl::OkStatus();
}

}  // namespace lmgate::backends::cli
