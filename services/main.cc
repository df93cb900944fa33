// lmgate: a gRPC gateway that lets many services share one LM Studio host.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "backends/builtin.h"
#include "backends/registry.h"
#include "backends/selector.h"
#include "common/cli_flags.h"
#include "services/config.h"
#include "services/http_ingress/ingress.h"
#include "services/listener.h"
#include "services/logging.h"
#include "services/server.h"

ABSL_FLAG(std::string, config, "",
          "Path of a JSON config file (every option: deploy/CONFIG.md). Flags given on the "
          "command line override the file.");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve gRPC on; port 0 picks a free port (printed at start).");
ABSL_FLAG(std::string, lmstudio_url, "http://127.0.0.1:1234",
          "Base URL of the LM Studio host. http://h:1234, h:1234, .../v1, .../api/v0 and "
          ".../api/v1 are all accepted.");
ABSL_FLAG(std::string, lmstudio_api_token_env, "LM_API_TOKEN",
          "Environment variable holding the LM Studio API token (sk-lm-...), if the host "
          "requires one. The token itself is never taken as a flag, so it stays out of `ps`.");
ABSL_FLAG(std::string, drivers, "sdk_ws,rest,openai,cli",
          "Comma-separated drivers to enable: sdk_ws (SDK WebSocket), rest (/api/v0, /api/v1), "
          "openai (/v1), cli (the lms tool, lifecycle only). AUTO picks among these by "
          "capability.");
ABSL_FLAG(std::string, default_model, "",
          "Model used by Chat/Complete/Tokenize requests that name none.");
ABSL_FLAG(std::string, default_embedding_model, "",
          "Model used by Embed requests that name none.");
ABSL_FLAG(std::string, lms_path, "lms", "Path of the `lms` CLI for the cli driver.");
ABSL_FLAG(int, worker_threads, 32, "Threads for blocking upstream calls (unary RPCs, loads).");
ABSL_FLAG(double, shutdown_grace_seconds, 10,
          "On SIGTERM/SIGINT: seconds running calls may take to finish before they are "
          "cancelled (upstream predictions included).");
ABSL_FLAG(double, drain_delay_seconds, 0,
          "On SIGTERM/SIGINT, before the grace: seconds lmgate keeps serving with readiness "
          "NOT_SERVING, so load balancers stop sending first.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error or off.");
ABSL_FLAG(std::string, log_format, "text",
          "text or json: the format of every stdout line (access log and lifecycle events "
          "included).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "host:port of the Prometheus /metrics endpoint (empty = off).");
ABSL_FLAG(std::string, http_listen, "",
          "host:port of the OpenAI-compatible HTTP ingress (/v1/models, /v1/chat/completions, "
          "/v1/completions, /v1/embeddings); empty = off. Port 0 picks a free port.");
ABSL_FLAG(bool, insecure, false,
          "Allow --listen on a non-loopback address without API keys (anyone who can reach the "
          "port may use and manage the LM Studio host).");
ABSL_FLAG(std::string, redis_url, "",
          "redis://[[user]:password@]host[:port][/db] shared by every lmgate in front of the same "
          "LM Studio host (quotas exact across them); empty = this lmgate alone (in-process "
          "state). Prefer cluster.redis_password_env for the password. rediss:// (TLS) is not "
          "supported (hiredis 0.14).");
ABSL_FLAG(std::string, redis_password_env, "",
          "Environment variable holding the Redis password (config cluster.redis_password_env); "
          "the password itself is never taken as a flag, so it stays out of `ps`.");
ABSL_FLAG(bool, check_config, false,
          "Validate the configuration (file + flags) as a start would (keys, TLS files "
          "included), print the effective config as JSON on stdout (secrets redacted), and "
          "exit: 0 if valid, 2 if not (the reason on stderr).");

namespace lmgate {
namespace {

// Flags named on the command line (this Abseil keeps IsSpecifiedOnCommandLine private).
std::set<std::string>& SpecifiedFlags() {
  static auto* names = new std::set<std::string>();
  return *names;
}

bool Specified(const char* name) { return SpecifiedFlags().count(name) > 0; }

absl::StatusOr<services::Config> BuildConfig() {
  services::Config c;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    auto file = services::LoadConfigFile(absl::GetFlag(FLAGS_config));
    if (!file.ok()) return file.status();
    c = *std::move(file);
  }
  if (Specified("listen") || absl::GetFlag(FLAGS_config).empty()) c.listen = absl::GetFlag(FLAGS_listen);
  if (Specified("lmstudio_url") || absl::GetFlag(FLAGS_config).empty())
    c.host.base_url = absl::GetFlag(FLAGS_lmstudio_url);
  if (c.host.api_token.empty()) {
    const char* tok = std::getenv(absl::GetFlag(FLAGS_lmstudio_api_token_env).c_str());
    if (tok != nullptr) {
      c.host.api_token = tok;
      c.api_token_env = absl::GetFlag(FLAGS_lmstudio_api_token_env);
    }
  }
  if (Specified("drivers")) {
    c.drivers = absl::StrSplit(absl::GetFlag(FLAGS_drivers), ',', absl::SkipEmpty());
  }
  if (Specified("default_model")) c.gateway.default_model = absl::GetFlag(FLAGS_default_model);
  if (Specified("default_embedding_model"))
    c.gateway.default_embedding_model = absl::GetFlag(FLAGS_default_embedding_model);
  if (Specified("lms_path")) c.host.lms_path = absl::GetFlag(FLAGS_lms_path);
  if (Specified("worker_threads")) c.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  if (Specified("shutdown_grace_seconds"))
    c.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  if (Specified("drain_delay_seconds"))
    c.drain_delay = absl::Seconds(absl::GetFlag(FLAGS_drain_delay_seconds));
  if (Specified("log_level")) c.log_level = absl::GetFlag(FLAGS_log_level);
  if (Specified("log_format")) c.log_format = absl::GetFlag(FLAGS_log_format);
  if (Specified("insecure")) c.insecure = absl::GetFlag(FLAGS_insecure);
  if (Specified("redis_url")) c.cluster.redis_url = absl::GetFlag(FLAGS_redis_url);
  if (Specified("redis_password_env"))
    c.cluster.redis_password_env = absl::GetFlag(FLAGS_redis_password_env);
  if (Specified("metrics_listen") || absl::GetFlag(FLAGS_config).empty())
    c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (Specified("http_listen")) c.http_listen = absl::GetFlag(FLAGS_http_listen);
  return c;
}

// What a start needs that the configuration decides, checked.
struct Prepared {
  services::Config config;
  std::unique_ptr<admission::Identity> identity;
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null = plaintext
};

// Every check of the configuration a start makes, in the order it makes them; --check_config runs
// exactly this, so it refuses what a start would refuse (short of binding the ports).
absl::StatusOr<Prepared> Prepare(const backends::BackendRegistry& registry) {
  Prepared p;
  auto config = BuildConfig();
  if (!config.ok()) return config.status();
  if (auto st = services::ValidateConfig(*config, registry.Names()); !st.ok()) return st;
  p.config = *std::move(config);
  // Keys are resolved here (key_env variables, key_file files).
  auto identity = admission::Identity::Create(p.config.identity);
  if (!identity.ok()) return identity.status();
  p.identity = *std::move(identity);
  if (!p.config.tls_cert_file.empty()) {
    services::TlsOptions tls{p.config.tls_cert_file, p.config.tls_key_file,
                             p.config.tls_client_ca_file, p.config.tls_require_client_cert};
    auto creds = services::MakeServerCredentials(tls);
    if (!creds.ok()) return creds.status();
    p.credentials = *std::move(creds);
  }
  return p;
}

// The settings a reload cannot change in a running process (they are bound at start: sockets,
// TLS, drivers, threads), named when `next` differs from `running` in them.
std::vector<std::string> NotLive(const services::Config& running, const services::Config& next) {
  std::vector<std::string> changed;
  auto check = [&](bool differs, const char* name) {
    if (differs) changed.push_back(name);
  };
  check(running.listen != next.listen, "listen");
  check(running.metrics_listen != next.metrics_listen, "metrics_listen");
  check(running.http_listen != next.http_listen, "http_listen");
  check(running.tls_cert_file != next.tls_cert_file, "tls_cert_file");
  check(running.tls_key_file != next.tls_key_file, "tls_key_file");
  check(running.tls_client_ca_file != next.tls_client_ca_file, "tls_client_ca_file");
  check(running.tls_require_client_cert != next.tls_require_client_cert, "tls_require_client_cert");
  check(running.drivers != next.drivers, "drivers");
  check(running.host.base_url != next.host.base_url, "lmstudio.url");
  check(running.host.lms_path != next.host.lms_path, "lmstudio.lms_path");
  check(running.worker_threads != next.worker_threads, "worker_threads");
  check(running.cluster.redis_url != next.cluster.redis_url ||
            running.cluster.redis_password_env != next.cluster.redis_password_env ||
            running.cluster.on_redis_error != next.cluster.on_redis_error ||
            running.cluster.command_timeout != next.cluster.command_timeout ||
            running.cluster.heartbeat != next.cluster.heartbeat,
        "cluster");
  check(running.gateway.default_embedding_model != next.gateway.default_embedding_model,
        "default_embedding_model");
  return changed;
}

// SIGHUP: re-runs the start-up's configuration build and checks (Prepare), and on success puts
// the keys, tenants' roles, models and limits (quota state is kept per tenant name), the client
// allowlist, the model policies and default model (under UpdateModelPolicy's run-time changes,
// which win for the fields they set; the log names them) and the log level in force; what is bound at start is reported and left as is. On
// error the running configuration stays, and the reason is logged.
void Reload(const backends::BackendRegistry& registry, services::Config* running,
            services::LmgateServer* server) {
  auto next = Prepare(registry);
  if (!next.ok()) {
    spdlog::error("reload failed, keeping the running configuration: {}",
                  std::string(next.status().message()));
    return;
  }
  if (auto changed = NotLive(*running, next->config); !changed.empty()) {
    spdlog::warn("reload: {} cannot change while lmgate runs (restart to apply); kept as is",
                 absl::StrJoin(changed, ", "));
  }
  server->ReplaceIdentity(std::shared_ptr<const admission::Identity>(std::move(next->identity)));
  spdlog::set_level(spdlog::level::from_str(next->config.log_level));
  running->identity = next->config.identity;
  running->log_level = next->config.log_level;
  std::vector<std::string> kept = server->ReplacePolicies(next->config.gateway.lifecycle.models,
                                                          next->config.gateway.default_model);
  if (!kept.empty()) {
    spdlog::info("reload: run-time policy changes (UpdateModelPolicy) win over the file for: {}",
                 absl::StrJoin(kept, ", "));
  }
  running->gateway.lifecycle.models = next->config.gateway.lifecycle.models;
  running->gateway.default_model = next->config.gateway.default_model;
  spdlog::info("reloaded the configuration: {} key(s), log level {}",
               next->config.identity.keys.size(), next->config.log_level);
}

int Run() {
  // Block the stop signals in every thread; this one waits for them. First thing: threads inherit
  // the mask, and the drivers created below start theirs (the HTTP client's loop): a thread
  // started earlier could take a SIGTERM and die of it instead of draining.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reload (Reload above), not a stop
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  backends::BackendRegistry registry;
  if (auto st = backends::RegisterBuiltinBackends(registry); !st.ok()) {
    std::cerr << "lmgate: " << st << "\n";
    return 1;
  }
  auto prepared = Prepare(registry);
  if (!prepared.ok()) {
    std::cerr << "lmgate: " << prepared.status().message() << "\n";
    return 2;
  }
  services::Config* config = &prepared->config;
  if (absl::GetFlag(FLAGS_check_config)) {
    std::cout << services::ConfigToJson(*config);
    std::cerr << "lmgate: config OK\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  services::SetupLogging(config->log_format == "json" ? services::LogFormat::kJson
                                                      : services::LogFormat::kText);

  std::vector<std::unique_ptr<backends::Driver>> drivers;
  for (const auto& name : config->drivers) {
    auto d = registry.Create(name, config->host);
    if (!d.ok()) {
      std::cerr << "lmgate: driver " << name << ": " << d.status().message() << "\n";
      return 1;
    }
    drivers.push_back(*std::move(d));
  }

  if (!prepared->identity->keys_enabled()) {
    spdlog::warn("no API keys configured: every caller may use and manage the LM Studio host{}",
                 config->insecure ? " (--insecure)" : "; serving loopback only");
  }

  services::ServerOptions opts;
  opts.credentials = prepared->credentials;
  opts.identity = std::shared_ptr<const admission::Identity>(std::move(prepared->identity));
  opts.listen = config->listen;
  // Shared with the server, which shuts the drivers down (joining their threads) before it
  // destroys what they call into; this reference only keeps them until the server is gone.
  auto driver_set = std::make_shared<backends::DriverSet>(std::move(drivers),
                                                          config->prefer_configured_order);
  opts.drivers = driver_set;
  opts.gateway = config->gateway;
  opts.gateway.lifecycle.host = config->host.base_url;  // leases and admission name the host
  opts.worker_threads = config->worker_threads;
  opts.metrics_listen = config->metrics_listen;
  opts.metrics_max_connections = config->metrics_max_connections;
  opts.metrics_timeout = config->metrics_timeout;
  opts.stream_limits.write_stall = config->stream_write_stall;
  opts.stream_limits.max_pending_bytes = config->stream_max_pending_bytes;
  opts.limits = config->limits;
  opts.drain_delay = config->drain_delay;
  opts.ready_requires_pinned = config->ready_requires_pinned;
  opts.cluster = config->cluster;
  opts.conversations = config->conversations;
  http_ingress::Ingress* ingress = nullptr;
  if (!config->http_listen.empty()) {
    http_ingress::IngressOptions io;
    io.server.listen = config->http_listen;
    io.server.threads = config->http.threads;
    io.server.max_body_bytes = static_cast<size_t>(config->http.max_body_bytes);
    io.server.max_header_bytes = static_cast<size_t>(config->http.max_header_bytes);
    io.server.max_headers = config->http.max_headers;
    io.server.max_connections = config->http.max_connections;
    io.server.idle_timeout = config->http.idle_timeout;
    io.server.read_timeout = config->http.read_timeout;
    // A reader that stalls an SSE stream is bounded as a gRPC stream is (limits.stream_*; 0 =
    // no bound is taken as a day, so a connection can never hold on forever).
    io.server.write_stall = config->stream_write_stall > absl::ZeroDuration()
                                ? config->stream_write_stall
                                : absl::Hours(24);
    io.server.max_pending_bytes = config->stream_max_pending_bytes > 0
                                      ? config->stream_max_pending_bytes
                                      : size_t{1} << 30;
    auto factory = http_ingress::IngressFactory(io);
    opts.front_ends.push_back([factory, &ingress](services::CoreRefs core) {
      auto fe = factory(core);
      if (fe.ok()) ingress = static_cast<http_ingress::Ingress*>(fe->get());
      return fe;
    });
  }
  // Systemd and container runtimes often start processes with a soft limit of 1024 under a much
  // higher hard one; the connection cap (limits.max_connections) is taken under what this gives.
  services::RaiseFileLimit();
  auto server = services::LmgateServer::Create(std::move(opts));
  if (!server.ok()) {
    std::cerr << "lmgate: " << server.status().message() << "\n";
    return 1;
  }
  const std::string host = config->listen.substr(0, config->listen.rfind(':'));
  // Scripts wait for these lines ("lmgate listening on HOST:PORT "): bare in text, each one JSON
  // object (the same words in "msg") in json, like every other stdout line.
  auto announce = [](const std::string& line) {
    if (services::CurrentLogFormat() == services::LogFormat::kJson) {
      spdlog::info("{}", line);
    } else {
      std::printf("%s\n", line.c_str());
    }
  };
  announce(absl::StrCat("lmgate listening on ", host, ":", (*server)->port(), " (LM Studio at ",
                        config->host.base_url, ")"));
  if ((*server)->metrics_port() != 0) {
    announce(absl::StrCat("metrics on http://",
                          config->metrics_listen.substr(0, config->metrics_listen.rfind(':')),
                          ":", (*server)->metrics_port(), "/metrics"));
  }
  if (ingress != nullptr) {
    announce(absl::StrCat(
        "openai-compatible http on http://",
        config->http_listen.substr(0, config->http_listen.rfind(':')), ":", ingress->port(),
        "/v1"));
  }
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    Reload(registry, config, server->get());
  }
  spdlog::info("signal {}: draining (grace {}s)", sig, absl::ToDoubleSeconds(config->shutdown_grace));
  // Stop accepting → drain for the grace → cancel the rest → stop the drivers (LmgateServer::
  // Shutdown), then destroy the server (gateway, registry, observer) before the drivers.
  (*server)->Shutdown(config->shutdown_grace);
  server->reset();
  driver_set.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace lmgate

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lmgate: a gRPC gateway in front of one LM Studio host.\n"
      "  lmgate --lmstudio_url=http://127.0.0.1:1234 --listen=127.0.0.1:50051\n"
      "Services: lmgate.v1.ModelManager, lmgate.v1.Inference, grpc.health.v1.Health, server\n"
      "reflection. Most flags are also config file keys (deploy/CONFIG.md); a flag given here\n"
      "overrides the file. SIGHUP re-reads the config (keys, limits, model policies, log level; deploy/CONFIG.md).\n"
      "Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when it cannot start, 2 for a\n"
      "bad configuration or bad usage.");
  // Debian's Abseil is built without NDEBUG, so by default every absl::Mutex::Lock also records
  // lock order in a process-wide graph (deadlock detection) under a global lock: ~8% of lmgate's
  // CPU per call in the benchmark's profile, and a point of contention between threads. Tests
  // keep it on; the server does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  lmgate::cli::ParsedCommandLine cl = lmgate::cli::ParseCommandLine(argc, argv);
  switch (cl.outcome) {
    case lmgate::cli::ParsedCommandLine::Outcome::kHelp:
      std::cout << absl::ProgramUsageMessage() << "\n\n"
                << lmgate::cli::FlagsHelp({"services/main.cc"});
      return 0;
    case lmgate::cli::ParsedCommandLine::Outcome::kUsageError:
      std::cerr << "lmgate: " << cl.error << "\n";
      return 2;
    case lmgate::cli::ParsedCommandLine::Outcome::kOk:
      break;
  }
  if (!cl.positional.empty()) {
    std::cerr << "lmgate: unexpected argument \"" << cl.positional[0] << "\" (lmgate takes only "
              << "flags; see --help)\n";
    return 2;
  }
  lmgate::SpecifiedFlags() = std::move(cl.specified);
  return lmgate::Run();
}
