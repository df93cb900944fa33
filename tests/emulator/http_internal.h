// Private helpers shared by the HTTP API translation units.
#ifndef LMGATE_TESTS_EMULATOR_HTTP_INTERNAL_H_
#define LMGATE_TESTS_EMULATOR_HTTP_INTERNAL_H_

#include <string>

#include "nlohmann/json.hpp"
#include "tests/emulator/http_api.h"

namespace lmgate::emulator::http_internal {

inline constexpr char kJson[] = "application/json; charset=utf-8";

// "<prefix><22 lowercase alphanumerics>", like LM Studio's chatcmpl-/cmpl-/resp_ ids.
std::string RandomId(const std::string& prefix);
int64_t NowSeconds();
// stopReason → OpenAI finish_reason.
std::string FinishReason(const std::string& stop_reason);
// An error that was not produced by a cancelled client: respond with it.
bool IsClientGone(const absl::Status& status, const Job* job);

inline void RespondJson(HttpResponder& r, int status, const nlohmann::json& body) {
  r.Respond(status, kJson, body.dump());
}

}  // namespace lmgate::emulator::http_internal

#endif  // LMGATE_TESTS_EMULATOR_HTTP_INTERNAL_H_
