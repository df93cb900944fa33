#include "clients/cpp/policy_command.h"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lmgate::client {
namespace {

std::string Settings(const v1::LoadConfig& c) {
  std::vector<std::string> out;
  if (c.has_context_length()) out.push_back(absl::StrCat("context_length=", c.context_length()));
  if (c.has_gpu_offload_ratio()) out.push_back(absl::StrCat("gpu=", c.gpu_offload_ratio()));
  if (c.has_cpu_threads()) out.push_back(absl::StrCat("cpu_threads=", c.cpu_threads()));
  if (c.has_parallel_slots()) out.push_back(absl::StrCat("parallel_slots=", c.parallel_slots()));
  if (c.has_eval_batch_size()) out.push_back(absl::StrCat("eval_batch_size=", c.eval_batch_size()));
  if (c.has_flash_attention()) {
    out.push_back(absl::StrCat("flash_attention=", c.flash_attention() ? "true" : "false"));
  }
  return out.empty() ? "-" : absl::StrJoin(out, " ");
}

std::string Settings(const v1::SamplingParams& s) {
  std::vector<std::string> out;
  if (s.has_temperature()) out.push_back(absl::StrCat("temperature=", s.temperature()));
  if (s.has_top_p()) out.push_back(absl::StrCat("top_p=", s.top_p()));
  if (s.has_top_k()) out.push_back(absl::StrCat("top_k=", s.top_k()));
  if (s.has_min_p()) out.push_back(absl::StrCat("min_p=", s.min_p()));
  if (s.has_max_tokens()) out.push_back(absl::StrCat("max_tokens=", s.max_tokens()));
  if (s.has_seed()) out.push_back(absl::StrCat("seed=", s.seed()));
  if (s.stop_size() > 0) out.push_back(absl::StrCat("stop=", s.stop_size(), " string(s)"));
  return out.empty() ? "-" : absl::StrJoin(out, " ");
}

}  // namespace

int PolicyCommand(Client& c, const v1::UpdateModelPolicyRequest& req) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::ModelPolicy p;
  grpc::Status st = c.models().UpdateModelPolicy(&ctx, req, &p);
  if (!st.ok()) {
    std::cerr << "lmgatectl: " << c.Describe(st) << "\n";
    return 1;
  }
  std::printf("model        %s%s\n", p.model_key().c_str(), p.is_default() ? " (default)" : "");
  std::printf("ttl          %s\n",
              p.has_ttl() ? absl::StrCat(p.ttl().seconds(), "s").c_str() : "never");
  std::printf("keep_loaded  %s\n", p.keep_loaded() ? "true" : "false");
  std::printf("load         %s\n", Settings(p.config()).c_str());
  std::printf("sampling     %s\n", Settings(p.sampling()).c_str());
  std::printf("run-time     %s\n",
              p.overridden_size() ? absl::StrJoin(p.overridden(), ", ").c_str() : "-");
  return 0;
}

}  // namespace lmgate::client
