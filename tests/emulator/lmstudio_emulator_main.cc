// lmstudio_emulator: runs the LM Studio host emulator until SIGTERM/SIGINT.
// With --port 0 it prints exactly one line "listening on 127.0.0.1:PORT" on stdout.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "spdlog/spdlog.h"
#include "tests/emulator/emulator.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int, port, 1234, "TCP port for HTTP and WebSocket; 0 picks a free port.");
ABSL_FLAG(std::string, catalogue, "",
          "Catalogue JSON file ({\"models\":[ModelInfo + reasoning/defaultContextLength/"
          "embeddingDimension]}); empty = built-in (qwen/qwen3-4b, qwen/qwen3-4b-thinking-2507, "
          "google/gemma-3-1b, text-embedding-nomic-embed-text-v1.5, "
          "text-embedding-bge-small-en-v1.5).");
ABSL_FLAG(int64_t, ttft_ms, 20, "Time to first token (prompt processing), ms.");
ABSL_FLAG(double, tokens_per_second, 200, "Generation speed; 0 = as fast as possible.");
ABSL_FLAG(double, load_ms_per_gb, 20, "Model load time per GB of model file (2.5 GB -> 50 ms).");
ABSL_FLAG(int, load_progress_steps, 4, "Progress packets per load.");
ABSL_FLAG(bool, jit, true, "JIT loading: HTTP inference may load unloaded models.");
ABSL_FLAG(bool, auto_evict, true, "Keep at most one JIT-loaded model.");
ABSL_FLAG(int64_t, jit_ttl_ms, 3600000, "Idle TTL of JIT loads that give no ttl, ms.");
ABSL_FLAG(int, parallel, 4, "Parallel prediction slots per instance unless the load sets "
                            "llm.load.numParallelSessions; more requests queue FIFO.");
ABSL_FLAG(int, min_response_tokens, 16, "Shortest natural response, tokens.");
ABSL_FLAG(int, max_response_tokens, 48, "Longest natural response, tokens.");
ABSL_FLAG(std::string, api_token, "",
          "Require this API token (sk-lm-<8 alnum>:<20 alnum>) on HTTP (Bearer) and in the "
          "WebSocket handshake. Empty = no auth.");
ABSL_FLAG(int, io_threads, 2, "I/O threads.");
ABSL_FLAG(std::string, lmstudio_version, "0.4.0", "Version reported by system/version.");
ABSL_FLAG(std::string, log_level, "warn", "trace|debug|info|warn|error|off (stderr).");
ABSL_FLAG(std::string, log_frames, "",
          "Append every SDK WebSocket frame and HTTP request received (JSON, namespace/path, "
          "traceparent, redacted authorization) to this file as JSON lines; empty = only in "
          "memory (GET /__emulator/frames).");
ABSL_FLAG(bool, log_outgoing_frames, false, "The frame log also holds the SDK frames sent.");
ABSL_FLAG(bool, v0_identifier_rows, false,
          "GET /api/v0/models lists instances with a custom identifier as rows of their own, "
          "like the real host.");
ABSL_FLAG(bool, lm_link_status, true,
          "Serve repository/lmLinkStatus like a host without LM Link (false = rpcError, like a "
          "host before LM Link).");
ABSL_FLAG(bool, omit_default_parallel, false,
          "A load that did not set numParallelSessions reports no parallel field (getLoadConfig, "
          "/api/v1), like some host versions; clients apply the SDK default 4.");
// Faults armed at start (also settable at runtime: POST /__emulator/faults).
ABSL_FLAG(int, drop_after_fragments, -1,
          "Fault: the next prediction drops its connection after N fragments (-1 = off).");
ABSL_FLAG(int, http_error_count, 0, "Fault: the next N inference/model HTTP requests fail.");
ABSL_FLAG(int, http_error_status, 503, "Fault: HTTP status of those failures.");
ABSL_FLAG(int, stall_after_fragments, -1,
          "Fault: the next prediction stops sending after N fragments (-1 = off)...");
ABSL_FLAG(int64_t, stall_ms, 0, "...for this many ms (<0 = until cancelled).");
ABSL_FLAG(double, load_time_multiplier, 1.0, "Fault: multiply every load time (slow loads).");
ABSL_FLAG(int64_t, jit_window_ms, 0,
          "Fault: for this many ms after a load/unload of a model starts, HTTP inference naming "
          "it fails at once with --jit_window_status (0 = off).");
ABSL_FLAG(int, jit_window_status, 404, "Fault: status of JIT-window failures.");
ABSL_FLAG(int, fail_next_loads, 0, "Fault: the next N loads fail half-way.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "LM Studio host emulator for lmgate tests.\n"
      "Serves the SDK WebSocket namespaces (/llm, /embedding, /system, ...), OpenAI-compatible "
      "/v1/*, REST /api/v0/* and /api/v1/*, /lmstudio-greeting and /lms-status on one port, plus "
      "/__emulator/{stats,reset,faults,settings,frames}.\n"
      "Usage: lmstudio_emulator --port 0 [--catalogue FILE] [--ttft_ms N] "
      "[--tokens_per_second X] ...");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // Block the stop signals in every thread; main waits for them with sigwait().
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  lmgate::emulator::Options o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.catalogue_json = absl::GetFlag(FLAGS_catalogue);
  o.api_token = absl::GetFlag(FLAGS_api_token);
  o.io_threads = absl::GetFlag(FLAGS_io_threads);
  o.lmstudio_version = absl::GetFlag(FLAGS_lmstudio_version);
  lmgate::emulator::Settings& s = o.settings;
  s.ttft_ms = absl::GetFlag(FLAGS_ttft_ms);
  s.tokens_per_second = absl::GetFlag(FLAGS_tokens_per_second);
  s.load_ms_per_gb = absl::GetFlag(FLAGS_load_ms_per_gb);
  s.load_progress_steps = absl::GetFlag(FLAGS_load_progress_steps);
  s.jit_enabled = absl::GetFlag(FLAGS_jit);
  s.auto_evict = absl::GetFlag(FLAGS_auto_evict);
  s.jit_default_ttl_ms = absl::GetFlag(FLAGS_jit_ttl_ms);
  s.default_parallel = absl::GetFlag(FLAGS_parallel);
  s.min_response_tokens = absl::GetFlag(FLAGS_min_response_tokens);
  s.max_response_tokens = absl::GetFlag(FLAGS_max_response_tokens);
  s.v0_identifier_rows = absl::GetFlag(FLAGS_v0_identifier_rows);
  s.lm_link_status = absl::GetFlag(FLAGS_lm_link_status);
  s.omit_default_parallel = absl::GetFlag(FLAGS_omit_default_parallel);
  o.frame_log.path = absl::GetFlag(FLAGS_log_frames);
  o.frame_log.log_outgoing = absl::GetFlag(FLAGS_log_outgoing_frames);
  absl::Status valid = lmgate::emulator::Settings(s).Apply(s.ToJson());
  if (!valid.ok()) {
    std::fprintf(stderr, "lmstudio_emulator: %s\n", valid.ToString().c_str());
    return 2;
  }
  lmgate::emulator::Faults& f = o.faults;
  f.drop_after_fragments = absl::GetFlag(FLAGS_drop_after_fragments);
  f.http_error_count = absl::GetFlag(FLAGS_http_error_count);
  f.http_error_status = absl::GetFlag(FLAGS_http_error_status);
  f.stall_after_fragments = absl::GetFlag(FLAGS_stall_after_fragments);
  f.stall_ms = absl::GetFlag(FLAGS_stall_ms);
  f.load_time_multiplier = absl::GetFlag(FLAGS_load_time_multiplier);
  f.jit_window_ms = absl::GetFlag(FLAGS_jit_window_ms);
  f.jit_window_status = absl::GetFlag(FLAGS_jit_window_status);
  f.fail_next_loads = absl::GetFlag(FLAGS_fail_next_loads);

  auto emulator = lmgate::emulator::Emulator::Create(o);
  if (!emulator.ok()) {
    std::fprintf(stderr, "lmstudio_emulator: %s\n", emulator.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s:%d\n", o.host.c_str(), (*emulator)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("lmstudio_emulator: signal {}, shutting down", sig);
  (*emulator)->Shutdown();
  return 0;
}
