#include "tests/emulator/emulator.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "tests/emulator/http_api.h"
#include "tests/emulator/model_host.h"
#include "tests/emulator/sdk_session.h"
#include "tests/emulator/server.h"

namespace lmgate::emulator {

bool IsValidApiToken(const std::string& t) {
  if (t.size() != 6 + 8 + 1 + 20 || t.compare(0, 6, "sk-lm-") != 0 || t[14] != ':') return false;
  for (size_t i = 6; i < t.size(); ++i) {
    if (i != 14 && std::isalnum(static_cast<unsigned char>(t[i])) == 0) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Create(Options options) {
  if (!options.api_token.empty() && !IsValidApiToken(options.api_token)) {
    return absl::InvalidArgumentError(
        "api_token must look like sk-lm-<8 letters/digits>:<20 letters/digits>");
  }
  absl::StatusOr<Catalogue> catalogue = Catalogue::FromFile(options.catalogue_json);
  if (!catalogue.ok()) return catalogue.status();
  absl::StatusOr<std::unique_ptr<FrameLog>> frames = FrameLog::Create(options.frame_log);
  if (!frames.ok()) return frames.status();
  std::unique_ptr<Emulator> e(new Emulator());
  e->options_ = options;
  e->frames_ = *std::move(frames);
  e->host_ = std::make_unique<Host>(*std::move(catalogue), options.settings, options.faults);
  e->auth_ = std::make_unique<SdkAuthenticator>(options.api_token);
  HttpApiOptions api_options;
  api_options.api_token = options.api_token;
  api_options.lmstudio_version = options.lmstudio_version;
  api_options.frames = e->frames_.get();
  Emulator* raw = e.get();
  api_options.restart = [raw](int64_t ms, bool drop) { raw->RefuseConnections(ms, drop); };
  e->api_ = std::make_unique<HttpApi>(e->host_.get(), api_options);
  ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.io_threads = options.io_threads;
  server_options.sdk_info.version = options.lmstudio_version;
  server_options.frames = e->frames_.get();
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Create(server_options, e->host_.get(), e->auth_.get(), e->api_.get());
  if (!server.ok()) return server.status();
  e->server_ = *std::move(server);
  return e;
}

Emulator::~Emulator() { Shutdown(); }

void Emulator::Shutdown() {
  if (server_ == nullptr) return;
  server_->Close();    // no new work; connections dropped (their work is cancelled)
  host_->Shutdown();   // wakes and joins every worker
  server_->Shutdown(); // then the I/O threads
}

int Emulator::port() const { return server_->port(); }
std::string Emulator::http_url() const { return absl::StrCat("http://", options_.host, ":", port()); }
std::string Emulator::ws_url() const { return absl::StrCat("ws://", options_.host, ":", port()); }

nlohmann::json Emulator::Stats() const { return host_->Stats(); }
void Emulator::ResetStats() { host_->ResetStats(); }
Settings Emulator::settings() const { return host_->settings(); }
void Emulator::SetSettings(const Settings& s) { host_->SetSettings(s); }
absl::Status Emulator::ApplySettings(const nlohmann::json& u) { return host_->ApplySettings(u); }
Faults Emulator::faults() const { return host_->faults(); }
void Emulator::SetFaults(const Faults& f) { host_->SetFaults(f); }
absl::Status Emulator::ApplyFaults(const nlohmann::json& u) { return host_->ApplyFaults(u); }

void Emulator::DropAfterFragments(int n) {
  (void)host_->ApplyFaults({{"drop_after_fragments", n}});
}
void Emulator::FailNextHttpRequests(int count, int status) {
  (void)host_->ApplyFaults({{"http_error", {{"count", count}, {"status", status}}}});
}
void Emulator::StallNextPrediction(int after, int64_t ms) {
  (void)host_->ApplyFaults({{"stall", {{"after_fragments", after}, {"ms", ms}}}});
}
void Emulator::SetLoadTimeMultiplier(double m) {
  (void)host_->ApplyFaults({{"load_time_multiplier", m}});
}
void Emulator::SetJitWindow(int64_t ms, int status) {
  (void)host_->ApplyFaults({{"jit_window_ms", ms}, {"jit_window_status", status}});
}
void Emulator::FailNextLoads(int n) { (void)host_->ApplyFaults({{"fail_next_loads", n}}); }
void Emulator::RefuseConnections(int64_t ms, bool drop) { server_->Restart(ms, drop); }

absl::StatusOr<std::string> Emulator::Load(const std::string& key,
                                           std::optional<std::string> identifier,
                                           std::optional<int64_t> ttl_ms, int64_t context_length,
                                           int parallel) {
  const ModelSpec* spec = host_->catalogue().Find(key);
  if (spec == nullptr) return absl::NotFoundError(absl::StrCat("no model ", key));
  LoadRequest req;
  req.model = key;
  req.identifier = std::move(identifier);
  req.ttl_ms = ttl_ms;
  const std::string prefix = spec->is_llm() ? "llm.load." : "embedding.load.";
  if (context_length > 0) req.config.Set(prefix + "contextLength", context_length);
  if (parallel > 0) req.config.Set("llm.load.numParallelSessions", parallel);
  std::shared_ptr<Job> job = host_->NewJob();
  absl::StatusOr<InstanceHandle> inst = host_->Load(req, nullptr, job.get());
  if (!inst.ok()) return inst.status();
  return host_->Identifier(*inst);
}

absl::Status Emulator::Unload(const std::string& identifier) { return host_->Unload(identifier); }

std::vector<nlohmann::json> Emulator::Frames() const { return frames_->Frames(); }
void Emulator::ClearFrames() { frames_->Clear(); }

Host& Emulator::host() { return *host_; }

}  // namespace lmgate::emulator
