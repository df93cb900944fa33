// Host::Predict and Host::Embed: slots, timing, cut-offs, fault injection during generation.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/emulator/model_host.h"
#include "tests/emulator/model_host_internal.h"

namespace lmgate::emulator {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of one of `stops`.
size_t HeldBack(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    for (size_t n = std::min(s.size() - 1, text.size()); n > best; --n) {
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        best = n;
        break;
      }
    }
  }
  return best;
}

}  // namespace

absl::Status Host::Predict(const InstanceHandle& inst, const PredictionRequest& req,
                           PredictionObserver* obs, Job* job) {
  const ModelSpec& spec = *inst->spec;
  if (!spec.is_llm()) {
    return WithPayload(absl::InvalidArgumentError(absl::StrCat(
                           "Model \"", spec.model_key, "\" is not a text generation model")),
                       kPayloadHttpStatus, "400");
  }
  std::vector<std::string> stops;
  for (const std::string& s : req.stop_strings) {
    if (!s.empty()) stops.push_back(s);
  }
  const int64_t prompt_tokens = CountTokens(RenderPrompt(req.prompt));
  GenerationOptions gen = req.generation;
  {
    absl::MutexLock l(&mu_);
    gen.min_content_tokens = settings_.min_response_tokens;
    gen.max_content_tokens = settings_.max_response_tokens;
  }
  const GenerationPlan plan = PlanGeneration(spec, req.prompt, gen);
  const int64_t max_tokens = req.max_tokens.value_or(-1);
  const bool stop_at_limit = req.overflow_policy == "stopAtLimit";

  absl::MutexLock l(&mu_);
  if (inst->state != Instance::State::kLoaded) {
    return WithPayload(absl::UnavailableError(absl::StrCat("Model \"", inst->identifier,
                                                           "\" was unloaded")),
                       kPayloadHttpStatus, "400");
  }
  const int64_t ctx = inst->context_length;
  if (prompt_tokens >= ctx && stop_at_limit) {
    // [?] llama.cpp's message when the prompt alone exceeds the context under stopAtLimit.
    return WithPayload(
        absl::InvalidArgumentError(absl::StrCat(
            "Trying to keep the first ", prompt_tokens, " tokens when context the overflows. "
            "However, the model is loaded with context length of only ", ctx,
            " tokens, which is not enough. Try to load the model with a larger context length, "
            "or provide a shorter input")),
        kPayloadHttpStatus, "400");
  }
  const int64_t effective_prompt = std::min(prompt_tokens, ctx - 1);
  const Settings settings = settings_;
  const int drop_after = faults_.drop_after_fragments;
  const int stall_after = faults_.stall_after_fragments;
  const int64_t stall_ms = faults_.stall_ms;
  faults_.drop_after_fragments = -1;
  faults_.stall_after_fragments = -1;

  ++counters_.predictions_started;
  ++predictions_active_;
  const uint64_t ticket = next_ticket_++;
  inst->queue.push_back(ticket);
  inst->last_used_ms = EpochMs(absl::Now());
  auto slot_ready = [&] {
    return !Waiting(job) || inst->state != Instance::State::kLoaded ||
           (inst->queue.front() == ticket && inst->active < inst->parallel);
  };
  mu_.Await(absl::Condition(&slot_ready));
  inst->queue.erase(std::find(inst->queue.begin(), inst->queue.end(), ticket));

  PredictionResult result;
  PredictionStats& stats = result.stats;
  bool got_slot = false;
  if (!Waiting(job)) {
    stats.stop_reason = "userStopped";
  } else if (inst->state != Instance::State::kLoaded) {
    stats.stop_reason = "modelUnloaded";
  } else {
    got_slot = true;
    ++inst->active;
    ++inst->prompt_phase;
  }
  ++version_;  // a queue entry left: the reaper may care

  // Waits until `deadline`; true if interrupted (cancelled, shut down or unloaded).
  auto wait_until = [&](absl::Time deadline) {
    auto interrupted = [&] { return !Waiting(job) || inst->state != Instance::State::kLoaded; };
    mu_.AwaitWithDeadline(absl::Condition(&interrupted), deadline);
    return interrupted();
  };

  const absl::Time t0 = absl::Now();
  absl::Time first_token_at = t0;
  if (got_slot) {
    Unlocked([&] { obs->OnPromptProgress(0.0, effective_prompt); });
    const bool interrupted = wait_until(t0 + absl::Milliseconds(settings.ttft_ms));
    --inst->prompt_phase;
    if (!interrupted) Unlocked([&] { obs->OnPromptProgress(1.0, effective_prompt); });
    first_token_at = absl::Now();
    const absl::Duration per_token = settings.tokens_per_second > 0
                                         ? absl::Seconds(1.0 / settings.tokens_per_second)
                                         : absl::ZeroDuration();
    absl::Duration shift;
    std::string pending;  // content held back because it may start a stop string
    int pending_tokens = 0;
    int fragments = 0;
    bool stalled = false;
    std::string raw_tool;
    auto emit = [&](Fragment f) {
      Unlocked([&] { obs->OnFragment(f); });
      ++fragments;
    };
    for (size_t i = 0; i < plan.tokens.size(); ++i) {
      if (!Waiting(job)) {
        stats.stop_reason = "userStopped";
        break;
      }
      if (inst->state != Instance::State::kLoaded) {
        stats.stop_reason = "modelUnloaded";
        break;
      }
      if (max_tokens >= 0 && stats.predicted_tokens >= max_tokens) {
        stats.stop_reason = "maxPredictedTokensReached";
        break;
      }
      if (stop_at_limit && effective_prompt + stats.predicted_tokens >= ctx) {
        stats.stop_reason = "contextLengthReached";
        break;
      }
      if (i > 0 && wait_until(first_token_at + shift + per_token * static_cast<double>(i))) {
        --i;  // re-evaluate the stop conditions above
        continue;
      }
      if (stall_after >= 0 && fragments >= stall_after && !stalled) {
        stalled = true;
        const absl::Time stall_start = absl::Now();
        const bool interrupted = wait_until(stall_ms < 0 ? absl::InfiniteFuture()
                                                         : stall_start + absl::Milliseconds(stall_ms));
        shift += absl::Now() - stall_start;
        if (interrupted) {
          --i;
          continue;
        }
      }
      const PlannedToken& tok = plan.tokens[i];
      ++stats.predicted_tokens;
      switch (tok.kind) {
        case TokenKind::kContent: {
          pending += tok.text;
          ++pending_tokens;
          size_t hit = std::string::npos;
          std::string hit_stop;
          const std::string all = result.content + pending;
          for (const std::string& s : stops) {
            size_t pos = all.find(s, result.content.size() >= s.size()
                                         ? result.content.size() - s.size() + 1
                                         : 0);
            if (pos != std::string::npos && pos < hit) {
              hit = pos;
              hit_stop = s;
            }
          }
          if (hit != std::string::npos) {
            std::string before = all.substr(result.content.size(),
                                            hit > result.content.size() ? hit - result.content.size() : 0);
            if (!before.empty()) emit({before, pending_tokens, "none", false});
            result.content += before;
            pending.clear();
            stats.stop_reason = "stopStringFound";
            stats.stop_string = hit_stop;
            break;
          }
          const size_t hold = HeldBack(pending, stops);
          if (pending.size() > hold) {
            std::string out = pending.substr(0, pending.size() - hold);
            emit({out, pending_tokens, "none", false});
            result.content += out;
            pending.erase(0, pending.size() - hold);
            pending_tokens = 0;
          }
          break;
        }
        case TokenKind::kReasoning:
          ++stats.reasoning_tokens;
          result.reasoning += tok.text;
          emit({tok.text, 1, "reasoning", false});
          break;
        case TokenKind::kReasoningStartTag:
          ++stats.reasoning_tokens;
          emit({tok.text, 1, "reasoningStartTag", true});
          break;
        case TokenKind::kReasoningEndTag:
          ++stats.reasoning_tokens;
          emit({tok.text, 1, "reasoningEndTag", true});
          break;
        case TokenKind::kToolCall: {
          const ToolCall& call = plan.tool_calls[tok.tool_call];
          raw_tool += tok.text;
          const bool last_of_part = i + 1 == plan.tokens.size() ||
                                    plan.tokens[i + 1].tool_part != tok.tool_part;
          if (tok.tool_part == ToolPart::kBegin) {
            Unlocked([&] { obs->OnToolCallStart(call); });
          } else if (tok.tool_part == ToolPart::kName && last_of_part) {
            Unlocked([&] { obs->OnToolCallName(call); });
          } else if (tok.tool_part == ToolPart::kArguments) {
            Unlocked([&] { obs->OnToolCallArguments(tok.text); });
          } else if (tok.tool_part == ToolPart::kEnd && last_of_part) {
            result.tool_calls.push_back(call);
            Unlocked([&] { obs->OnToolCallEnd(call, raw_tool); });
            raw_tool.clear();
          }
          break;
        }
      }
      if (!stats.stop_reason.empty()) break;
      if (drop_after >= 0 && fragments >= drop_after) {
        Unlocked([&] { obs->OnDropConnection(); });
        stats.stop_reason = "userStopped";
        break;
      }
    }
    if (stats.stop_reason.empty()) {
      if (!pending.empty()) {
        emit({pending, pending_tokens, "none", false});
        result.content += pending;
      }
      stats.stop_reason = result.tool_calls.empty() ? "eosFound" : "toolCalls";
    }
    --inst->active;
  }

  const absl::Time end = absl::Now();
  stats.prompt_tokens = got_slot ? effective_prompt : 0;
  stats.time_to_first_token_sec = got_slot ? absl::ToDoubleSeconds(first_token_at - t0) : 0;
  stats.total_time_sec = absl::ToDoubleSeconds(end - t0);
  const double gen_sec = absl::ToDoubleSeconds(end - first_token_at);
  stats.tokens_per_second =
      stats.predicted_tokens > 0 && gen_sec > 0 ? stats.predicted_tokens / gen_sec : 0;
  inst->idle_since = end;
  inst->last_used_ms = EpochMs(end);
  ++version_;
  --predictions_active_;
  if (stats.stop_reason == "userStopped") {
    ++counters_.predictions_cancelled;
  } else {
    ++counters_.predictions_finished;
  }
  result.identifier = inst->identifier;
  result.model_info = InstanceInfoLocked(*inst);
  result.load_config = inst->load_config.ToJson();
  result.prediction_config = req.prediction_config.ToJson();
  Unlocked([&] { obs->OnDone(result); });
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Host::Embed(const InstanceHandle& inst, const std::string& text) {
  {
    absl::MutexLock l(&mu_);
    if (inst->state != Instance::State::kLoaded) {
      return WithPayload(absl::UnavailableError(absl::StrCat("Model \"", inst->identifier,
                                                             "\" was unloaded")),
                         kPayloadHttpStatus, "400");
    }
    if (inst->spec->is_llm()) {
      return WithPayload(absl::InvalidArgumentError(absl::StrCat(
                             "Model \"", inst->identifier, "\" is not an embedding model")),
                         kPayloadHttpStatus, "400");
    }
    ++counters_.embeddings;
    inst->idle_since = absl::Now();
    inst->last_used_ms = EpochMs(inst->idle_since);
    ++version_;
  }
  return lmgate::emulator::Embed(*inst->spec, text);
}

}  // namespace lmgate::emulator
