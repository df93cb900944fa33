#include "backends/openai/openai_driver.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/http/json.h"
#include "backends/http/openai_calls.h"

namespace lmgate::backends::openai {
namespace {

constexpr char kModelsPath[] = "/v1/models";

// "key:N" (N >= 2) -> N, else 0: LM Studio names further instances of a model this way.
int InstanceSuffix(const std::string& id) {
  size_t colon = id.rfind(':');
  if (colon == std::string::npos || colon + 1 >= id.size()) return 0;
  int n = 0;
  if (!absl::SimpleAtoi(absl::string_view(id).substr(colon + 1), &n) || n < 2) return 0;
  return n;
}

std::string KeyOf(const std::string& id) {
  return InstanceSuffix(id) ? id.substr(0, id.rfind(':')) : id;
}

}  // namespace

OpenAiDriver::OpenAiDriver(Options options, std::unique_ptr<http::HttpClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

absl::StatusOr<std::unique_ptr<OpenAiDriver>> OpenAiDriver::Create(Options options) {
  auto client = http::CreateHostClient(options.host);
  if (!client.ok()) return client.status();
  return std::unique_ptr<OpenAiDriver>(new OpenAiDriver(std::move(options), std::move(*client)));
}

Capabilities OpenAiDriver::capabilities() const {
  Capabilities c;
  c.list_models = true;
  c.chat = true;
  c.complete = true;
  c.embed = true;
  c.tool_calls = true;
  c.structured_output = true;
  return c;
}

absl::Status OpenAiDriver::Probe(const CallContext& ctx) {
  return probe_cache_.Get([&] {
    http::HttpRequest request{"GET", kModelsPath};
    request.timeout = options_.host.connect_timeout + absl::Seconds(2);
    return client_->Do(ctx, request).status();
  });
}

HostModels OpenAiDriver::ModelsFromIds(const std::vector<std::string>& ids, JitMode jit) {
  if (jit == JitMode::kUnknown) {
    for (const std::string& id : ids) {
      if (InstanceSuffix(id)) jit = JitMode::kOff;
    }
  }
  HostModels out;
  if (jit == JitMode::kOff) {
    out.downloaded_known = false;
    for (const std::string& id : ids) {
      InstanceInfo instance;
      instance.identifier = id;
      instance.model_key = KeyOf(id);
      out.loaded.push_back(std::move(instance));
    }
    return out;
  }
  out.loaded_known = false;
  out.downloaded_known = jit == JitMode::kOn;
  for (const std::string& id : ids) {
    ModelInfo model;
    model.key = id;
    model.display_name = id;
    out.downloaded.push_back(std::move(model));
  }
  return out;
}

absl::StatusOr<HostModels> OpenAiDriver::ListModels(const CallContext& ctx) {
  absl::StatusOr<http::HttpResponse> response = client_->Do(ctx, {"GET", kModelsPath});
  if (!response.ok()) return response.status();
  auto json = http::ParseJson(response->body, "the /v1/models answer");
  if (!json.ok()) return json.status();
  const http::Json* data = http::JsonMember(*json, "data");
  if (data == nullptr || !data->is_array()) {
    return absl::InternalError(absl::StrCat("LM Studio at ", client_->base_url(),
                                            ": /v1/models has no data array: ",
                                            http::Snippet(response->body)));
  }
  std::vector<std::string> ids;
  for (const http::Json& item : *data) {
    std::string id = http::JsonString(item, "id");
    if (!id.empty()) ids.push_back(std::move(id));
  }
  return ModelsFromIds(ids, options_.jit);
}

std::unique_ptr<GenerateHandle> OpenAiDriver::Generate(
    const CallContext& ctx, const GenerateRequest& request,
    std::shared_ptr<GenerateObserver> observer) {
  http::GenerateStreamOptions options;
  options.chat_path = "/v1/chat/completions";
  options.completion_path = "/v1/completions";
  options.use_upstream_stats = false;
  return http::StartGenerateStream(*client_, ctx, request, options, std::move(observer));
}

absl::StatusOr<EmbedResult> OpenAiDriver::Embed(const CallContext& ctx, const std::string& model,
                                                const std::vector<std::string>& inputs) {
  return http::DoEmbeddings(*client_, ctx, "/v1/embeddings", model, inputs);
}

}  // namespace lmgate::backends::openai
